// The read-only TFTP server for PXE: see server.ts for the protocol rules it keeps.

export { ErrorCode as TftpErrorCode } from './packet.ts';
export {
  createTftpServer,
  type TftpClient,
  type TftpLogEntry,
  type TftpServer,
  type TftpServerOptions,
  type TftpStats,
} from './server.ts';

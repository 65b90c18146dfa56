// Profile → one flat kickstart, through the handlebars templates in kickstarts/.
// The top template pulls in partials in the seed's spirit: common-install, common-pkgs,
// common-post, common-nochroot, and a per-distro part (`{{> (distro "install")}}` picks
// partials/<distro>-install.ks.hbs).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Handlebars from 'handlebars';
import { dataError } from '../../common/index.ts';
import type { BuildProfile } from './profile.ts';

export interface RenderInput {
  profile: BuildProfile;
  /** Profile path as shown in the kickstart's header. */
  profileFile: string;
  kickstartsDir: string;
}

export function renderKickstart({ profile, profileFile, kickstartsDir }: RenderInput): string {
  const hb = Handlebars.create();
  const partialsDir = join(kickstartsDir, 'partials');
  for (const f of readdirSync(partialsDir).sort()) {
    if (f.endsWith('.ks.hbs'))
      hb.registerPartial(f.slice(0, -'.ks.hbs'.length), readFileSync(join(partialsDir, f), 'utf8'));
  }
  hb.registerHelper('distro', (part: unknown) => {
    const name = `${profile.distro}-${String(part)}`;
    if (!existsSync(join(partialsDir, `${name}.ks.hbs`))) {
      throw dataError(`no kickstart partial "${name}" for distro "${profile.distro}"`, partialsDir);
    }
    return name;
  });
  const top = join(kickstartsDir, profile.kickstart);
  if (!existsSync(top)) {
    throw dataError(
      `kickstart template "${profile.kickstart}" not found`,
      kickstartsDir,
      'set "kickstart" in the profile to a *.ks.hbs file in kickstarts/',
    );
  }
  // Kickstarts are not HTML: no escaping, and a missing variable is an error rather than an empty string.
  const template = hb.compile(readFileSync(top, 'utf8'), { noEscape: true, strict: true });
  const text = template({
    profile: { description: '', post: '', mirror: '', ...profile },
    profileFile: relative(process.cwd(), profileFile) || profileFile,
    kernelArgs: profile.kernelArgs.join(' '),
  });
  // Templates leave blank runs where optional parts are empty; keep the output tidy and stable.
  return `${text.replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

// blessed's widget modules, imported one by one (not through blessed's index, whose widget table
// is a dynamic require that a bundler cannot follow); typed with @types/blessed.
declare module 'blessed/lib/widgets/screen.js' {
  import type { Widgets } from 'blessed';

  const Screen: (options: Widgets.IScreenOptions) => Widgets.Screen;
  export default Screen;
}
declare module 'blessed/lib/widgets/box.js' {
  import type { Widgets } from 'blessed';

  const Box: (options: Widgets.BoxOptions) => Widgets.BoxElement;
  export default Box;
}
declare module 'blessed/lib/tput.js' {
  const Tput: new (options: { terminal: string }) => { error: Error | null };
  export default Tput;
}

import { parseLookupArgs, parseWatchArgs } from './args.js';
import { DEMO_HELP, MAIN_HELP, RESOLVE_HELP, WATCH_HELP } from './help.js';
import { resolveCommand } from './resolve.js';
import { styleFor } from './style.js';
import { EXIT, UsageError } from './usage-error.js';
import { watchCommand, type Screen } from './watch.js';

/**
 * The `headless-lb` command: `watch`, `resolve`, `demo`. Returns the exit code; never calls
 * process.exit, so a handle left open would show as a process that does not end.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const stdout = process.stdout;
  const screen: Screen = {
    write: (text) => void stdout.write(text),
    error: (text) => void process.stderr.write(text),
    style: styleFor(stdout.isTTY === true, process.env),
    isTTY: stdout.isTTY === true,
    get rows() {
      return stdout.isTTY ? stdout.rows : undefined;
    },
    get columns() {
      return stdout.isTTY ? stdout.columns : undefined;
    },
    onResize(listener) {
      stdout.on('resize', listener);
      return () => stdout.off('resize', listener);
    },
  };
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'watch': {
        const args = parseWatchArgs(rest);
        if (args === 'help') return help(WATCH_HELP);
        return await watchCommand(args, screen, interrupted());
      }
      case 'resolve': {
        const args = parseLookupArgs(rest);
        if (args === 'help') return help(RESOLVE_HELP);
        return await resolveCommand(args, screen);
      }
      case 'demo': {
        if (rest.includes('--help') || rest.includes('-h')) return help(DEMO_HELP);
        if (rest.length > 0) throw new UsageError(rest[0]!, undefined, 'demo takes no arguments');
        const { runDemo } = await import('./demo.js'); // the test kit loads for the demo only
        return await runDemo(stdout.isTTY === true, interrupted());
      }
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        return help(rest[0] === 'watch' ? WATCH_HELP : rest[0] === 'resolve' ? RESOLVE_HELP : rest[0] === 'demo' ? DEMO_HELP : MAIN_HELP);
      default:
        throw new UsageError('<command>', command, 'watch, resolve or demo (see headless-lb --help)');
    }
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(
      `headless-lb: ${error.message}\nRun 'headless-lb ${command === 'watch' || command === 'resolve' || command === 'demo' ? `${command} ` : ''}--help' for usage.\n`,
    );
    return EXIT.usage;
  }
}

function help(text: string): number {
  process.stdout.write(text);
  return EXIT.ok;
}

/** Resolves on the first Ctrl-C or SIGTERM; a second one exits at once. */
function interrupted(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      process.once('SIGINT', () => process.exit(130));
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

import type { Command } from 'commander';

export function registerDemo(program: Command): void {
  program.command('demo').description('(not yet implemented)').action(() => {
    console.error('svnic demo: not implemented yet');
    process.exitCode = 2;
  });
}

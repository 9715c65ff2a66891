import type { Command } from 'commander';

export function registerRun(program: Command): void {
  program.command('run').description('(not yet implemented)').action(() => {
    console.error('svnic run: not implemented yet');
    process.exitCode = 2;
  });
}

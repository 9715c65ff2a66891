import type { Command } from 'commander';

export function registerBench(program: Command): void {
  program.command('bench').description('(not yet implemented)').action(() => {
    console.error('svnic bench: not implemented yet');
    process.exitCode = 2;
  });
}

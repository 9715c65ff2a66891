#!/usr/bin/env node
/** The `svnic` command. Each subcommand lives in its own file and registers itself here. */
import { Command } from 'commander';
import { registerDemo } from './demo.js';
import { registerRun } from './run.js';
import { registerBench } from './bench.js';

const program = new Command();
program
  .name('svnic')
  .description('A self-virtualized network device: per-guest virtio-net VIFs served by device engine threads')
  .showHelpAfterError();
registerDemo(program);
registerRun(program);
registerBench(program);
(await import('./bench-qos.js')).registerBenchQos(program);
await program.parseAsync(process.argv);

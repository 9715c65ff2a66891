#!/usr/bin/env node
/** The `svnic` command. Each subcommand lives in its own file and registers itself here. */
import { Command } from 'commander';
import { registerDemo } from './demo.js';
import { registerRun } from './run.js';
import { registerBench } from './bench.js';
import { registerDaemon } from './daemon.js';
import { registerVif } from './vif.js';
import { registerStats } from './stats.js';
import { registerTop } from './top.js';
import { registerConfig } from './config-cmd.js';
import { registerCapture } from './capture.js';
import { registerVm } from './vm.js';

const program = new Command();
program
  .name('svnic')
  .description('A self-virtualized network device: per-guest virtio-net VIFs served by device engine threads')
  .showHelpAfterError();
registerDemo(program);
registerRun(program);
registerBench(program);
(await import('./bench-qos.js')).registerBenchQos(program);
registerDaemon(program);
registerVif(program);
registerStats(program);
registerTop(program);
registerConfig(program);
registerCapture(program);
registerVm(program);
await program.parseAsync(process.argv);

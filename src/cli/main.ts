#!/usr/bin/env node
/** alrelu-convert: convert ONNX models to ALReLU, inspect, evaluate and fine-tune them. */
import { Command } from 'commander';
import { printableLines } from '../printable.js';
import { VERSION } from '../version.js';
import * as convertCmd from './convert.js';
import * as doctorCmd from './doctor.js';
import * as evalCmd from './eval.js';
import * as experimentCmd from './experiment.js';
import * as finetuneCmd from './finetune.js';
import * as inspectCmd from './inspect.js';
import * as pipelineCmd from './pipeline.js';
import * as serveCmd from './serve.js';

const program = new Command('alrelu-convert')
  .version(VERSION)
  .description('Rewrite ReLU/LeakyReLU in ONNX models as ALReLU (|LeakyReLU(x, a)|), then evaluate and fine-tune them on onnxruntime.')
  // commander quotes arguments back (a file name from a glob, say): printable like every other line
  .configureOutput({ outputError: (s, write) => write(printableLines(s.startsWith('error:') ? s : `error: ${s}`)) })
  .exitOverride((err) => {
    // commander's own usage errors (unknown option, missing argument) are bad input too: exit 2.
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

for (const cmd of [convertCmd, inspectCmd, evalCmd, doctorCmd, serveCmd, finetuneCmd, experimentCmd, pipelineCmd]) cmd.register(program);

await program.parseAsync(process.argv);

#!/usr/bin/env node
import { limitStartupHeap } from './startup-heap.js';

// Before the program's modules load: compiling them is the first of what a starting registry allocates.
limitStartupHeap();
await import('./cli-program.js');

// Package runtime runs WebAssembly modules for the proplet: in process with
// wazero (NewWazero), or through an external runtime binary run as a
// subprocess (NewExternal).
//
// A Job carries the module bytes and how to call it. Run returns the result
// as text: the first return value of a core-module export as a decimal
// string, or everything a WASI command wrote to stdout. Errors wrap the
// sentinels ErrInvalidModule, ErrNoFunction, ErrInputs, ErrMemoryLimit,
// ErrTimeout and ErrExit; a stop is the caller cancelling
// ctx, and Run then returns context.Cause(ctx).
//
// # Core module or WASI command
//
// A module that exports _start runs as a WASI preview1 command when the job
// names _start, main, nothing, or a function the module does not export:
// argv is "module.wasm" followed by Job.Args (or Job.Inputs when Args is
// empty), with Job.Env and Job.Stdin; the result is stdout, and a non-zero
// exit is an *ExitError carrying stderr. Otherwise the runtime calls the
// export Function, else main, run, _start, after running _initialize if the
// module has one (WASI reactors); an export without results yields stdout.
// Guests get real clocks and crypto/rand randomness, and no file system.
//
// # Compilation
//
// Compiling is the expensive step, so Wazero compiles each module once per
// digest and memory limit, even when many Runs of it race (the first
// compiles, the others wait), and keeps up to Options.MaxModules compiled
// modules per limit, evicting the least recently used idle one. With
// Options.CacheDir the machine code also goes to disk, so a restarted
// proplet skips the compiler. Every Run instantiates afresh: an instance is
// not safe for concurrent calls and keeps no state between tasks.
//
// With Options.Tiered, Prepare (a latent deployment) compiles with wazero's
// interpreter first, a fraction of the compiler's time, and Runs start on
// it at once; the compiler compiles the module in the background
// (MaxPromotions at a time) and its code takes over for the Runs that start
// after, while Runs in flight end on the interpreter's (wazero_tiers.go).
//
// # Limits
//
// Memory: wazero's memory limit is a runtime setting, so Wazero keeps one
// wazero runtime per limit (all sharing the compilation cache). A module
// whose declared minimum is above the job's limit fails with ErrMemoryLimit
// before it runs; memory.grow past the limit returns -1 to the guest (the
// wasm rule), which most languages turn into a trap or an out-of-memory
// exit, and the job fails with that error. The default is 256 MiB
// (DefaultMemoryLimitPages); a limit above wasm32's 4 GiB is refused. On
// 64-bit Linux a memory is an address-space reservation of its limit,
// committed as it grows and unmapped when the run ends (memory.go), so a
// job costs the host the pages it uses, with no copy on growth.
//
// Output: stdout and stderr are kept up to Options.MaxOutput (512 KiB);
// the rest is dropped and the text ends with "…[truncated N bytes]". A
// trap (stack overflow included) is ErrTrap.
//
// Time: Job.Timeout and ctx bound a run. Wazero compiles guests with
// WithCloseOnContextDone(true), so a cancelled context stops even a guest
// spinning in a loop. It has a price, measured with
//
//	go test -run XXX -bench . -benchtime 2s -count 3 ./workers/runtime/
//
// on a 2-core AMD EPYC (ranges of 3 runs):
//
//	benchmark                 interruptible     uninterruptible
//	AddWarm (one warm call)   8.1–9.4 µs/op     6.1–7.3 µs/op     (51 vs 48 allocs)
//	Sum (10M-iteration loop)  238–247 ms/op     6.2–6.7 ms/op
//
// A warm call stays far below the 100 µs target either way (instantiate, call
// and format cost ~2 µs more when interruptible: a goroutine watches ctx).
// Guest loops pay much more: wazero calls an exit-code check at every loop
// back-edge, about 23 ns, so a tight loop runs ~37 times slower (fib(30) in a
// Go guest was measured at ~7 times). We keep interruptible as the default
// because a task that cannot be stopped or timed out is worse than a slow
// one; Options.DisableCloseOnContextDone opts out for trusted, CPU-bound
// modules.
package runtime

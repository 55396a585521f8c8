// Package service is jetprop's application layer, beside the pure core in
// package engine: it runs the core's deciders and process managers against
// the event store and the read models.
//
//   - Handler executes one command: it loads the aggregate (or takes it
//     from a bounded cache), decides with the core's pure decider, appends
//     with the expected sequence and retries on conflict. It injects the
//     clock and the id source, so the core never reads either.
//   - Service holds the use cases the HTTP API and the CLI call (tasks,
//     artifacts, OCI import and export, workflows, API tokens and the
//     authentication of a request's token, secrets sealed through the
//     Sealer port and opened for the dispatcher), answering reads from the
//     read models and waiting for its own writes to show in them.
//   - WorkflowManager runs the workflow process manager (engine.Reconcile
//     and engine.Fire): it is woken by read-model observers, executes the
//     actions with the Handler and the Service, and keeps durable timers.
//   - Liveness remembers when devices last showed a sign of life.
//
// Everything here does I/O through ports (events.Store, the views, the
// module store, the timer store, the importer, the sealer) that the
// composition root in cmd/jetprop/app wires to adapters.
package service

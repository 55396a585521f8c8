// Package fleetsim simulates a fleet of proplets: N devices that speak
// jetprop's device protocol over real MQTT connections, as
// workers/proplet does, without running wasm. Each device has a
// persistent session (clean session off, client id = user name = device
// id), a last will on its own alive topic, a subscription to
// control/manager/<id>/+ at Config.QoS (0, as the proplet that accepts
// starts; 1, as the proplet before, is one JetStream consumer in the
// broker) and a QoS 0 one to registry/server/<id>; it announces itself on
// control/proplet/<id>/create, heartbeats on control/proplet/<id>/alive
// at QoS 1 every Config.Heartbeat (recording how long the broker took to
// acknowledge each one; "unreachable", with the reason, while the broker
// refuses its subscription), accepts every start it receives on
// control/proplet/<id>/accepted, a re-sent one too, and answers each task
// and attempt once, after Config.AnswerDelay, with a result on
// control/proplet/<id>/results. Config.NoAccept is the proplet before
// accepts.
//
// Fleet connects the devices at a controlled rate and counts what they
// see. Run drives a fleet against a jetprop server through its HTTP API
// and measures it (run.go): devices the API shows alive, devices that
// receive a start meant for them (and only those), the server process's
// CPU and memory in a steady window (from /proc), heartbeat
// acknowledgement latency and dispatch throughput. `jetprop sim` is its
// command; `make fleet-bench` (cmd/fleetbench) runs it against fresh
// `jetprop up` processes for several fleet sizes and adds shutdown and
// restart times.
//
// Each device is a thin MQTT 3.1.1 client of the simulator's own on paho's
// packet codec (mqttconn.go): one goroutine that reads its connection,
// writes straight from the caller, and heartbeats, keepalive and
// acknowledgement timeouts on one fleet-wide scheduler (sched.go), so that
// 10,000 devices on the server's box cost little of its CPU
// (docs/RATIONALE.md, "The fleet simulator ...").
package fleetsim

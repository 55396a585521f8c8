// Command fleetbench measures jetprop with simulated fleets of several
// sizes (`make fleet-bench`). For each size it starts a fresh `jetprop up
// --proplets 0` on a temp data dir and free loopback ports, runs `jetprop
// sim` against it with the server's pid, stops the server with SIGTERM
// once the fleet has disconnected (its persistent sessions stay stored)
// and times the graceful shutdown, starts it again on the same data and
// times it until GET /health answers, and stops it. It prints one
// Markdown table (fleetsim.WriteTable) with notes on what the server
// logged, ready to paste into a note.
//
//	go run ./testing/fleetsim/cmd/fleetbench -bin bin/jetprop -devices 1000,5000,10000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	bin      string
	sizes    []int
	simArgs  []string // passed to every jetprop sim
	keep     bool     // keep the data dirs
	logs     string   // the servers' logs go here
	json     bool
	stopWait time.Duration // for a graceful shutdown before SIGKILL
}

func parse(args []string) (options, error) {
	fs := flag.NewFlagSet("fleetbench", flag.ContinueOnError)
	var o options
	var sizes, heartbeat, duration, answer, reachTimeout, taskWait, dispatchTimeout string
	var tasks, rounds, conc, rate, qos, hbQoS int
	var accept bool
	fs.StringVar(&o.bin, "bin", "bin/jetprop", "the jetprop binary")
	fs.StringVar(&sizes, "devices", "1000,5000,10000", "fleet sizes, comma-separated")
	fs.StringVar(&duration, "duration", "60s", "steady window of each run")
	fs.StringVar(&heartbeat, "heartbeat", "10s", "between a device's heartbeats")
	fs.StringVar(&answer, "answer-delay", "0s", "from a start to its result")
	fs.IntVar(&rate, "connect-rate", 500, "devices that start connecting per second (0: no limit)")
	fs.IntVar(&qos, "qos", 0, "QoS of the devices' subscriptions to their starts: 0 as the proplet, 1 as before accepts")
	fs.IntVar(&hbQoS, "heartbeat-qos", 0, "QoS of the heartbeats: 0 as the proplet, 1 to time the broker's acknowledgements")
	fs.BoolVar(&accept, "accept", true, "devices accept every start and say when unreachable (false: as before; with -qos 1, the measurements made then)")
	fs.IntVar(&tasks, "tasks", 2000, "dispatch test: tasks not targeted (0 skips it)")
	fs.IntVar(&rounds, "rounds", 5, "dispatch test: rounds of -tasks tasks; tasks/s is the median round's")
	fs.IntVar(&conc, "concurrency", 8, "API requests in flight")
	fs.StringVar(&reachTimeout, "reach-timeout", "2m", "for the targeted starts and their results")
	fs.StringVar(&taskWait, "task-wait", "10s", "a dispatched task not finished by then is stuck")
	fs.StringVar(&dispatchTimeout, "dispatch-timeout", "3m", "for the whole dispatch test")
	fs.DurationVar(&o.stopWait, "stop-wait", 10*time.Minute, "for a graceful shutdown before SIGKILL")
	fs.BoolVar(&o.keep, "keep", false, "keep each run's data dir")
	fs.StringVar(&o.logs, "logs", "", "directory for the servers' logs (default: a new temp dir, kept)")
	fs.BoolVar(&o.json, "json", false, "print the reports as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for s := range strings.SplitSeq(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-devices: %q is not a fleet size", s)
		}
		o.sizes = append(o.sizes, n)
	}
	o.simArgs = []string{"--duration", duration, "--heartbeat", heartbeat, "--answer-delay", answer,
		"--connect-rate", strconv.Itoa(rate), "--tasks", strconv.Itoa(tasks), "--rounds", strconv.Itoa(rounds), "--concurrency", strconv.Itoa(conc),
		"--reach-timeout", reachTimeout, "--task-wait", taskWait, "--dispatch-timeout", dispatchTimeout,
		"--qos", strconv.Itoa(qos), "--heartbeat-qos", strconv.Itoa(hbQoS), "--accept=" + strconv.FormatBool(accept)}
	return o, nil
}

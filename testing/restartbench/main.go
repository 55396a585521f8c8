package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/testing/upproc"
)

// stopWait bounds a graceful shutdown; then the server is killed.
const stopWait = time.Minute

func main() {
	bin := flag.String("bin", "bin/jetprop", "the jetprop binary")
	sizes := flag.String("events", "100000,1000000", "comma-separated history sizes (events)")
	restarts := flag.Int("restarts", 3, "starts timed per size after the history is recorded")
	keep := flag.Bool("keep", false, "keep the data directories (printed)")
	extra := flag.String("server-flags", "", "more flags for 'jetprop up', space-separated")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Println("| events | recorded in | start (empty) | start, snapshots off (full replay) | first start (no snapshot yet) | starts from snapshots |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err == nil {
			err = measure(ctx, *bin, n, *restarts, *keep, strings.Fields(*extra))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "restartbench:", err)
			os.Exit(1)
		}
	}
}

// measure records n events on a fresh server and times its restarts.
func measure(ctx context.Context, bin string, n, restarts int, keep bool, extra []string) error {
	dir, err := os.MkdirTemp("", "restartbench-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "data:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	s, err := upproc.New(bin, dir, filepath.Join(dir, "server.log"), extra...)
	if err != nil {
		return err
	}
	first, err := s.Start(ctx) // creates the streams and the engine's password
	if err == nil {
		_, err = s.Stop(stopWait)
	}
	if err != nil {
		return err
	}
	began := time.Now()
	got, err := record(ctx, s, n)
	took := time.Since(began)
	if err != nil {
		return err
	}
	full, err := timeStart(ctx, s, "--snapshot-interval", "-1s")
	if err != nil {
		return err
	}
	var starts []string
	for range restarts + 1 {
		d, err := timeStart(ctx, s)
		if err != nil {
			return err
		}
		starts = append(starts, fmt.Sprintf("%.2f s", d.Seconds()))
	}
	fmt.Printf("| %d | %s (%.0f/s) | %.2f s | %.2f s | %s | %s |\n", got, took.Round(time.Second), float64(got)/took.Seconds(), first.Seconds(),
		full.Seconds(), starts[0], strings.Join(starts[1:], ", "))
	return nil
}

// timeStart starts the server with more flags, times it and stops it.
func timeStart(ctx context.Context, s *upproc.Server, flags ...string) (time.Duration, error) {
	extra := s.Flags
	s.Flags = append(slices.Clone(extra), flags...)
	defer func() { s.Flags = extra }()
	d, err := s.Start(ctx)
	if err != nil {
		return 0, err
	}
	_, err = s.Stop(stopWait)
	return d, err
}

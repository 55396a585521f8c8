package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line was wrong
)

// env is what a command may touch of the process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookup         func(string) (string, bool) // os.LookupEnv
}

// action runs a command with its positional arguments.
type action func(ctx context.Context, args []string) error

// command is a node of the command tree: a group (sub), a leaf (setup), or
// a command that parses its own arguments (raw).
type command struct {
	name    string
	args    string // synopsis of the positional arguments, e.g. "<id>"
	summary string // one line, in the parent's list
	help    string // what it does, after the usage line
	minArgs int
	maxArgs int // -1: any number

	aliases []string // other names it answers to, not listed

	setup func(fs *flagSet, e *env) action // declares flags, returns the action
	sub   []*command
	raw   func(ctx context.Context, e *env, args []string) error
}

// execute runs c with args and returns the exit code. path is the command
// line so far, without "jetprop".
func (c *command) execute(ctx context.Context, e *env, path string, args []string) int {
	switch {
	case c.raw != nil:
		return exitCode(e, c.raw(ctx, e, args))
	case c.sub != nil:
		return c.dispatch(ctx, e, path, args)
	}
	return c.runLeaf(ctx, e, path, args)
}

func (c *command) dispatch(ctx context.Context, e *env, path string, args []string) int {
	if len(args) == 0 {
		c.usage(e.stderr, path, false)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help":
		c.usage(e.stdout, path, true)
		return exitOK
	case "-version", "--version":
		if path == "" {
			return exitCode(e, printVersion(e.stdout))
		}
	case "help":
		return c.helpOn(e, path, args[1:])
	}
	sub := c.find(args[0])
	if sub == nil {
		fmt.Fprintf(e.stderr, "jetprop: unknown command %q\n\n", join(path, args[0]))
		c.usage(e.stderr, path, false)
		return exitUsage
	}
	return sub.execute(ctx, e, join(path, sub.name), args[1:])
}

// helpOn runs `help a b` as `a b --help`.
func (c *command) helpOn(e *env, path string, args []string) int {
	return c.execute(context.Background(), e, path, append(args, "--help"))
}

func (c *command) find(name string) *command {
	for _, s := range c.sub {
		if s.name == name || slices.Contains(s.aliases, name) {
			return s
		}
	}
	return nil
}

func join(path, name string) string { return strings.TrimSpace(path + " " + name) }

func (c *command) runLeaf(ctx context.Context, e *env, path string, args []string) int {
	fs := newFlagSet(path, e.lookup)
	act := c.setup(fs, e)
	pos, err := fs.parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.leafHelp(e.stdout, path, fs)
		return exitOK
	}
	if err == nil {
		err = c.checkArgs(pos)
	}
	if err != nil {
		return exitCode(e, usageErr(path, err))
	}
	return exitCode(e, act(ctx, pos))
}

func (c *command) checkArgs(pos []string) error {
	switch {
	case len(pos) < c.minArgs:
		return fmt.Errorf("missing arguments: want %s", c.args)
	case c.maxArgs >= 0 && len(pos) > c.maxArgs:
		return fmt.Errorf("unexpected arguments %q", pos[c.maxArgs:])
	}
	return nil
}

// usageError is a wrong command line found by a command that parses its
// own arguments.
type usageError struct {
	path string
	err  error
}

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

func usageErr(path string, err error) error { return &usageError{path: path, err: err} }

// exitCode prints a failure as "jetprop: <message>" (exit 1), or a usage
// error with a pointer to the help (exit 2).
func exitCode(e *env, err error) int {
	var usage *usageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &usage):
		fmt.Fprintf(e.stderr, "jetprop %s: %v\nRun 'jetprop %s --help' for usage.\n", usage.path, usage.err, usage.path)
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "jetprop: %v\n", unreachable(err))
	return exitError
}

// unreachable explains an error of a server that could not be reached
// (refused, no route, an unknown host): which address was tried and how
// to name another. Any other error is returned as it is.
func unreachable(err error) error {
	var ue *url.Error
	var op *net.OpError
	var dns *net.DNSError
	if !errors.As(err, &ue) || !errors.As(err, &op) && !errors.As(err, &dns) {
		return err
	}
	if op != nil && op.Op != "dial" {
		return err
	}
	addr := ue.URL
	if u, perr := url.Parse(ue.URL); perr == nil {
		addr = u.Scheme + "://" + u.Host
	}
	return fmt.Errorf("cannot reach the jetprop server at %s (%v); start one with 'jetprop up', or give its address with --server or %s",
		addr, ue.Err, sharedEnv["server"])
}

// usage lists a group's commands; long adds what the group is for.
func (c *command) usage(w io.Writer, path string, long bool) {
	if long && c.help != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintf(w, "Usage: %s <command> [arguments] [flags]\n\nCommands:\n", join("jetprop", path))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range c.sub {
		fmt.Fprintf(tw, "  %s\t%s\n", s.name, s.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun '%s <command> --help' (or '%s help <command>') for its arguments and flags.\n",
		join("jetprop", path), join("jetprop", path))
}

// leafHelp describes a command: usage line, what it does, flags.
func (c *command) leafHelp(w io.Writer, path string, fs *flagSet) {
	fmt.Fprintf(w, "Usage: jetprop %s [flags]", path)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(c.help))
	if fs.hasFlags() {
		fmt.Fprintf(w, "\nFlags (each also read from the environment variable named):\n")
		fs.PrintDefaults(w)
	}
}

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Environment variables shared by several commands; every other flag's
// variable is JETPROP_<COMMAND>_<FLAG>, e.g. JETPROP_TASK_CREATE_NAME.
var sharedEnv = map[string]string{
	"server": "JETPROP_SERVER",
	"output": "JETPROP_OUTPUT",
}

// flagSet is a flag.FlagSet whose every flag defaults to an environment
// variable, named in the flag's help.
type flagSet struct {
	fs      *flag.FlagSet
	prefix  string // env prefix of this command's own flags
	lookup  func(string) (string, bool)
	env     map[string]string // flag name -> env var
	aliases map[string]string // short name -> long name
	errs    []error           // env values that did not parse
}

func newFlagSet(path string, lookup func(string) (string, bool)) *flagSet {
	fs := flag.NewFlagSet("jetprop "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by the caller
	prefix := "JETPROP_" + strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace(path)) + "_"
	return &flagSet{fs: fs, prefix: prefix, lookup: lookup, env: map[string]string{}, aliases: map[string]string{}}
}

func (f *flagSet) envName(name string) string {
	if e, ok := sharedEnv[name]; ok {
		return e
	}
	return f.prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// fromEnv returns the flag's default: its env var parsed, or def.
func fromEnv[T any](f *flagSet, name string, def T, parse func(string) (T, error)) T {
	env := f.envName(name)
	f.env[name] = env
	s, ok := f.lookup(env)
	if !ok || s == "" {
		return def
	}
	v, err := parse(s)
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("env %s=%q: %w", env, s, err))
		return def
	}
	return v
}

func parseString(s string) (string, error) { return s, nil }

func (f *flagSet) String(p *string, name, def, usage string) {
	f.fs.StringVar(p, name, fromEnv(f, name, def, parseString), usage)
}

func (f *flagSet) Int(p *int, name string, def int, usage string) {
	f.fs.IntVar(p, name, fromEnv(f, name, def, strconv.Atoi), usage)
}

func (f *flagSet) Uint(p *uint64, name string, def uint64, usage string) {
	parse := func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }
	f.fs.Uint64Var(p, name, fromEnv(f, name, def, parse), usage)
}

func (f *flagSet) Bool(p *bool, name string, def bool, usage string) {
	f.fs.BoolVar(p, name, fromEnv(f, name, def, strconv.ParseBool), usage)
}

func (f *flagSet) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.fs.DurationVar(p, name, fromEnv(f, name, def, time.ParseDuration), usage)
}

// Pairs declares a repeatable KEY=VALUE flag; its env var holds
// comma-separated pairs.
func (f *flagSet) Pairs(p *map[string]string, name, usage string) {
	*p = fromEnv(f, name, map[string]string{}, parsePairs)
	f.fs.Var((*pairs)(p), name, usage)
}

// Alias makes short another name of the flag long.
func (f *flagSet) Alias(short, long string) {
	f.fs.Var(f.fs.Lookup(long).Value, short, "")
	f.aliases[short] = long
}

// pairs is a repeatable KEY=VALUE flag.
type pairs map[string]string

func (p *pairs) String() string {
	if p == nil || len(*p) == 0 {
		return ""
	}
	keys := make([]string, 0, len(*p))
	for k := range *p {
		keys = append(keys, k+"="+(*p)[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func (p *pairs) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE", s)
	}
	(*p)[k] = v
	return nil
}

func parsePairs(s string) (map[string]string, error) {
	m := pairs{}
	for kv := range strings.SplitSeq(s, ",") {
		if err := m.Set(kv); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// parse parses args, flags and positional arguments in any order ("--"
// ends the flags; a negative number is an argument, not a flag), and
// returns the positional ones.
func (f *flagSet) parse(args []string) ([]string, error) {
	if err := errors.Join(f.errs...); err != nil {
		return nil, err
	}
	flags, pos := f.split(args)
	if err := f.fs.Parse(flags); err != nil {
		return nil, err
	}
	return append(pos, f.fs.Args()...), nil
}

func (f *flagSet) split(args []string) (flags, pos []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(pos, args[i+1:]...)
		case !isFlag(a):
			pos = append(pos, a)
		default:
			flags = append(flags, a)
			if f.takesValue(a) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return flags, pos
}

func isFlag(a string) bool {
	if len(a) < 2 || a[0] != '-' {
		return false
	}
	_, err := strconv.ParseFloat(a, 64)
	return err != nil
}

// takesValue reports whether flag a ("--name" without "=value") is
// followed by its value.
func (f *flagSet) takesValue(a string) bool {
	name := strings.TrimLeft(a, "-")
	if strings.Contains(name, "=") {
		return false
	}
	fl := f.fs.Lookup(name)
	if fl == nil {
		return false // Parse reports it
	}
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// printDefaults writes one line per flag: names, type, help, default and
// env var.
func (f *flagSet) printDefaults(w io.Writer) {
	short := map[string]string{}
	for s, l := range f.aliases {
		short[l] = s
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	f.fs.VisitAll(func(fl *flag.Flag) {
		if _, isAlias := f.aliases[fl.Name]; isAlias {
			return
		}
		fmt.Fprintf(tw, "  %s\t%s\n", f.flagNames(fl, short[fl.Name]), f.flagHelp(fl))
	})
	tw.Flush()
}

func (f *flagSet) flagNames(fl *flag.Flag, short string) string {
	typ, _ := flag.UnquoteUsage(fl)
	names := "--" + fl.Name
	if short != "" {
		names = "-" + short + ", " + names
	}
	if typ != "" {
		names += " " + typ
	}
	return names
}

func (f *flagSet) flagHelp(fl *flag.Flag) string {
	_, usage := flag.UnquoteUsage(fl)
	var notes []string
	if fl.DefValue != "" && fl.DefValue != "0" && fl.DefValue != "false" && fl.DefValue != "0s" {
		notes = append(notes, "default "+strconv.Quote(fl.DefValue))
	}
	if env := f.env[fl.Name]; env != "" {
		notes = append(notes, "env "+env)
	}
	if len(notes) == 0 {
		return usage
	}
	return usage + " (" + strings.Join(notes, "; ") + ")"
}

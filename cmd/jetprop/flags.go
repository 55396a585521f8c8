package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/cmd/internal/envflag"
)

// Environment variables shared by several commands; every other flag's
// variable is JETPROP_<COMMAND>_<FLAG>, e.g. JETPROP_TASK_CREATE_NAME.
var sharedEnv = map[string]string{
	"server":    "JETPROP_SERVER",
	"api-token": "JETPROP_TOKEN",
	"output":    "JETPROP_OUTPUT",
	"ca":        "JETPROP_CA",
	"retry-for": "JETPROP_RETRY_FOR",
}

// flagSet is a client command's flag.FlagSet whose every flag defaults to
// an environment variable (envflag), named in the flag's help.
type flagSet struct {
	*envflag.Set
	fs     *flag.FlagSet
	prefix string                      // env prefix of this command's own flags
	lookup func(string) (string, bool) // the environment
}

func newFlagSet(path string, lookup func(string) (string, bool)) *flagSet {
	fs := flag.NewFlagSet("jetprop "+path, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by the caller
	prefix := "JETPROP_" + strings.ToUpper(strings.NewReplacer(" ", "_", "-", "_").Replace(path)) + "_"
	return &flagSet{Set: envflag.New(fs, lookup), fs: fs, prefix: prefix, lookup: lookup}
}

func (f *flagSet) hasFlags() bool {
	n := 0
	f.fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func (f *flagSet) envName(name string) string {
	if e, ok := sharedEnv[name]; ok {
		return e
	}
	return f.prefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func (f *flagSet) String(p *string, name, def, usage string) {
	f.Set.String(p, name, def, usage, f.envName(name))
}

func (f *flagSet) Int(p *int, name string, def int, usage string) {
	f.Set.Int(p, name, def, usage, f.envName(name))
}

func (f *flagSet) Uint(p *uint64, name string, def uint64, usage string) {
	f.Set.Uint64(p, name, def, usage, f.envName(name))
}

func (f *flagSet) Bool(p *bool, name string, def bool, usage string) {
	f.Set.Bool(p, name, def, usage, f.envName(name))
}

func (f *flagSet) Duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.Set.Duration(p, name, def, usage, f.envName(name))
}

// Pairs declares a repeatable KEY=VALUE flag; its env var holds
// comma-separated pairs.
func (f *flagSet) Pairs(p *map[string]string, name, usage string) {
	*p = map[string]string{}
	f.Set.Var((*pairs)(p), name, usage, f.envName(name))
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

// SetEnv takes the variable's comma-separated pairs.
func (p *pairs) SetEnv(s string) error {
	m := pairs{}
	for kv := range strings.SplitSeq(s, ",") {
		if err := m.Set(kv); err != nil {
			return err
		}
	}
	*p = m
	return nil
}

// parse parses args, flags and positional arguments in any order ("--"
// ends the flags; a negative number is an argument, not a flag), and
// returns the positional ones.
func (f *flagSet) parse(args []string) ([]string, error) {
	if err := f.Err(); err != nil {
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

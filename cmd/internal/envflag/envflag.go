// Package envflag binds command-line flags to environment variables, the
// one way jetprop's commands (server, proplet, proxy, client commands)
// take their configuration.
//
// A flag bound to variables starts at its built-in default; the first of
// its variables that is set and not empty replaces that; the command line
// replaces both. An empty variable is the same as an unset one (FOO= means
// "the default", like the shell's ${FOO:-default}); to set a string flag to
// the empty string, give the flag. Values of numbers, booleans and
// durations may carry surrounding spaces; strings are taken as they are.
//
// A variable that does not parse leaves the flag at its default and is
// kept: Err reports every one as `env NAME="value": why`, so a command
// fails on a typo in its environment instead of ignoring it. The help
// (PrintDefaults) names each flag's variables and its built-in default,
// never the value a variable holds, so a secret in the environment does
// not show in --help.
//
// Flag values belong in a component's Config (Config, setDefaults,
// Validate); this package only fills them.
package envflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Set declares flags on a flag.FlagSet, each bound to environment
// variables.
type Set struct {
	fs         *flag.FlagSet
	lookup     func(string) (string, bool)
	env        map[string][]string // flag name -> its variables, first wins
	aliases    map[string]string   // short name -> flag name, listed with it
	deprecated map[string]string   // old name -> flag name, not listed
	errs       []error             // variables that did not parse
}

// New returns a Set declaring flags on fs that reads variables with
// lookup (os.LookupEnv when nil).
func New(fs *flag.FlagSet, lookup func(string) (string, bool)) *Set {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Set{fs: fs, lookup: lookup, env: map[string][]string{},
		aliases: map[string]string{}, deprecated: map[string]string{}}
}

// FlagSet is the flag.FlagSet the flags are declared on; parse with it.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// String declares a string flag.
func (s *Set) String(p *string, name, def, usage string, env ...string) {
	s.fs.StringVar(p, name, def, usage)
	bind(s, p, name, env, func(v string) (string, error) { return v, nil })
}

// Int declares an int flag.
func (s *Set) Int(p *int, name string, def int, usage string, env ...string) {
	s.fs.IntVar(p, name, def, usage)
	bind(s, p, name, env, trimmed(strconv.Atoi))
}

// Int64 declares an int64 flag.
func (s *Set) Int64(p *int64, name string, def int64, usage string, env ...string) {
	s.fs.Int64Var(p, name, def, usage)
	bind(s, p, name, env, trimmed(func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) }))
}

// Float64 declares a float64 flag.
func (s *Set) Float64(p *float64, name string, def float64, usage string, env ...string) {
	s.fs.Float64Var(p, name, def, usage)
	bind(s, p, name, env, trimmed(func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }))
}

// Uint64 declares a uint64 flag.
func (s *Set) Uint64(p *uint64, name string, def uint64, usage string, env ...string) {
	s.fs.Uint64Var(p, name, def, usage)
	bind(s, p, name, env, trimmed(func(v string) (uint64, error) { return strconv.ParseUint(v, 10, 64) }))
}

// Bool declares a bool flag (true, false, 1, 0, t, f, ...).
func (s *Set) Bool(p *bool, name string, def bool, usage string, env ...string) {
	s.fs.BoolVar(p, name, def, usage)
	bind(s, p, name, env, trimmed(strconv.ParseBool))
}

// Duration declares a flag that takes a Go duration ("90s", "1m30s").
func (s *Set) Duration(p *time.Duration, name string, def time.Duration, usage string, env ...string) {
	s.fs.DurationVar(p, name, def, usage)
	bind(s, p, name, env, trimmed(time.ParseDuration))
}

// Seconds declares a duration flag that also takes a number of seconds
// ("10", "0.5"), as Propeller's variables hold them.
func (s *Set) Seconds(p *time.Duration, name string, def time.Duration, usage string, env ...string) {
	*p = def
	s.fs.Var((*seconds)(p), name, usage)
	bind(s, p, name, env, ParseSeconds)
}

// Var declares a flag of any flag.Value; its default is v as it is now.
// A variable's value goes to v.Set, or to v.SetEnv when v is an EnvSetter.
func (s *Set) Var(v flag.Value, name, usage string, env ...string) {
	s.fs.Var(v, name, usage)
	set := v.Set
	if e, ok := v.(EnvSetter); ok {
		set = e.SetEnv
	}
	s.env[name] = env
	if val, from, ok := s.value(env); ok {
		if err := set(val); err != nil {
			s.fail(from, val, err)
		}
	}
}

// EnvSetter is a flag.Value whose variable is written differently from
// one flag argument: a repeatable flag whose variable holds a list, say.
type EnvSetter interface {
	SetEnv(string) error
}

// bind sets *p from the first of env that is set and not empty.
func bind[T any](s *Set, p *T, name string, env []string, parse func(string) (T, error)) {
	s.env[name] = env
	val, from, ok := s.value(env)
	if !ok {
		return
	}
	v, err := parse(val)
	if err != nil {
		s.fail(from, val, err)
		return
	}
	*p = v
}

// value returns the first of env that is set and not empty, and its name.
func (s *Set) value(env []string) (val, from string, ok bool) {
	for _, name := range env {
		if v, set := s.lookup(name); set && v != "" {
			return v, name, true
		}
	}
	return "", "", false
}

func (s *Set) fail(env, val string, err error) {
	s.errs = append(s.errs, fmt.Errorf("env %s=%q: %w", env, val, err))
}

func trimmed[T any](parse func(string) (T, error)) func(string) (T, error) {
	return func(v string) (T, error) { return parse(strings.TrimSpace(v)) }
}

// Alias makes short another name of the flag name, listed with it
// ("-o, --output").
func (s *Set) Alias(short, name string) {
	s.fs.Var(s.fs.Lookup(name).Value, short, "")
	s.aliases[short] = name
}

// Deprecated keeps old, a former name of the flag name, working. The help
// lists it only at its end, as deprecated.
func (s *Set) Deprecated(old, name string) {
	s.fs.Var(s.fs.Lookup(name).Value, old, "deprecated: use --"+name)
	s.deprecated[old] = name
}

// Env returns the variables of the flag name (or of the flag an alias
// names), first first.
func (s *Set) Env(name string) []string {
	if n, ok := s.aliases[name]; ok {
		name = n
	}
	if n, ok := s.deprecated[name]; ok {
		name = n
	}
	return s.env[name]
}

// Err reports every variable that did not parse, as `env NAME="value":
// why`; nil when all did.
func (s *Set) Err() error { return errors.Join(s.errs...) }

// ParseSeconds parses a number of seconds ("10", "0.5") or a Go duration
// ("10s", "500ms").
func ParseSeconds(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("want seconds or a duration like 10s")
	}
	return d, nil
}

// seconds is a flag.Value for a duration given as seconds or a duration.
type seconds time.Duration

func (v *seconds) String() string { return time.Duration(*v).String() }

func (v *seconds) Set(s string) error {
	d, err := ParseSeconds(s)
	if err == nil {
		*v = seconds(d)
	}
	return err
}

// PrintDefaults writes one line per flag: its names ("-o, --output"), the
// type, the help, the built-in default and the variables. Deprecated
// names follow the list.
func (s *Set) PrintDefaults(w io.Writer) {
	short := map[string]string{}
	for a, name := range s.aliases {
		short[name] = a
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	s.fs.VisitAll(func(fl *flag.Flag) {
		if s.aliases[fl.Name] != "" || s.deprecated[fl.Name] != "" {
			return
		}
		fmt.Fprintf(tw, "  %s\t%s\n", names(fl, short[fl.Name]), s.help(fl))
	})
	tw.Flush()
	s.printDeprecated(w)
}

func names(fl *flag.Flag, short string) string {
	typ, _ := flag.UnquoteUsage(fl)
	if _, ok := fl.Value.(*seconds); ok && typ == "value" {
		typ = "duration"
	}
	names := "--" + fl.Name
	if short != "" {
		names = "-" + short + ", " + names
	}
	if typ != "" {
		names += " " + typ
	}
	return names
}

func (s *Set) help(fl *flag.Flag) string {
	_, usage := flag.UnquoteUsage(fl)
	var notes []string
	switch fl.DefValue {
	case "", "0", "false", "0s":
	default:
		notes = append(notes, "default "+strconv.Quote(fl.DefValue))
	}
	if env := s.env[fl.Name]; len(env) > 0 {
		notes = append(notes, "env "+strings.Join(env, " or "))
	}
	if len(notes) == 0 {
		return usage
	}
	return usage + " (" + strings.Join(notes, "; ") + ")"
}

func (s *Set) printDeprecated(w io.Writer) {
	if len(s.deprecated) == 0 {
		return
	}
	old := make([]string, 0, len(s.deprecated))
	for o, name := range s.deprecated {
		old = append(old, "--"+o+" (now --"+name+")")
	}
	sort.Strings(old)
	fmt.Fprintf(w, "\nDeprecated, still accepted: %s\n", strings.Join(old, ", "))
}

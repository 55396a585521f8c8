package envflag_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetprop/jetprop/cmd/internal/envflag"
)

// vars is an environment for a Set.
type vars map[string]string

func (v vars) lookup(k string) (string, bool) { s, ok := v[k]; return s, ok }

// config has a field of every kind the Set binds.
type config struct {
	Str      string
	Int      int
	Int64    int64
	Uint64   uint64
	Bool     bool
	Dur      time.Duration
	Interval time.Duration
	Level    level
	Renamed  string
}

// level is a custom flag.Value: 0 to 2.
type level int

func (l *level) String() string { return strconv.Itoa(int(*l)) }

func (l *level) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 2 {
		return errors.New("want 0, 1 or 2")
	}
	*l = level(n)
	return nil
}

func declare(env vars) (*envflag.Set, *config) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := envflag.New(fs, env.lookup)
	c := &config{Level: 1}
	s.String(&c.Str, "str", "def", "a `text`", "X_STR", "X_STR_OLD")
	s.Int(&c.Int, "int", 7, "an int", "X_INT")
	s.Int64(&c.Int64, "int64", 8, "an int64", "X_INT64")
	s.Uint64(&c.Uint64, "uint64", 9, "a uint64", "X_UINT64")
	s.Bool(&c.Bool, "bool", false, "a bool", "X_BOOL")
	s.Duration(&c.Dur, "dur", time.Second, "a duration", "X_DUR")
	s.Seconds(&c.Interval, "secs", 10*time.Second, "an `interval`", "X_SECS")
	s.Var(&c.Level, "level", "a level", "X_LEVEL")
	s.String(&c.Renamed, "data", "", "renamed", "X_DATA")
	s.Deprecated("data-dir", "data")
	s.Alias("s", "str")
	return s, c
}

func TestSet(t *testing.T) {
	defaults := config{Str: "def", Int: 7, Int64: 8, Uint64: 9, Dur: time.Second, Interval: 10 * time.Second, Level: 1}
	tests := []struct {
		name    string
		env     vars
		args    []string
		want    func(*config) // edits defaults into the wanted config
		wantErr string        // in Err
	}{
		{name: "defaults", want: func(*config) {}},
		{name: "every kind from env", env: vars{
			"X_STR": "s", "X_INT": "-1", "X_INT64": "1099511627776", "X_UINT64": "18446744073709551615",
			"X_BOOL": "true", "X_DUR": "1m", "X_SECS": "0.5", "X_LEVEL": "2",
		}, want: func(c *config) {
			c.Str, c.Int, c.Int64, c.Uint64, c.Bool, c.Dur, c.Interval, c.Level =
				"s", -1, 1<<40, 1<<64-1, true, time.Minute, 500*time.Millisecond, 2
		}},
		{name: "empty variable is unset", env: vars{"X_STR": "", "X_INT": "", "X_BOOL": "", "X_LEVEL": ""}, want: func(*config) {}},
		{name: "empty variable falls through to the next name", env: vars{"X_STR": "", "X_STR_OLD": "old"},
			want: func(c *config) { c.Str = "old" }},
		{name: "first name wins", env: vars{"X_STR": "new", "X_STR_OLD": "old"}, want: func(c *config) { c.Str = "new" }},
		{name: "numbers may carry spaces", env: vars{"X_INT": " 3 ", "X_SECS": " 2s", "X_BOOL": "1 "},
			want: func(c *config) { c.Int, c.Interval, c.Bool = 3, 2*time.Second, true }},
		{name: "strings are taken as they are", env: vars{"X_STR": " a "}, want: func(c *config) { c.Str = " a " }},
		{name: "seconds take a duration too", env: vars{"X_SECS": "250ms"}, want: func(c *config) { c.Interval = 250 * time.Millisecond }},
		{name: "flags win over env", env: vars{"X_STR": "env", "X_INT": "1", "X_SECS": "5"},
			args: []string{"-s", "flag", "--int", "2", "-secs", "3"},
			want: func(c *config) { c.Str, c.Int, c.Interval = "flag", 2, 3*time.Second }},
		{name: "deprecated name still works", args: []string{"-data-dir", "/d"}, want: func(c *config) { c.Renamed = "/d" }},
		{name: "bad int named with its variable", env: vars{"X_INT": "many"}, want: func(*config) {},
			wantErr: `env X_INT="many": strconv.Atoi: parsing "many": invalid syntax`},
		{name: "bad custom value", env: vars{"X_LEVEL": "7"}, want: func(*config) {}, wantErr: `env X_LEVEL="7": want 0, 1 or 2`},
		{name: "bad seconds", env: vars{"X_SECS": "soon"}, want: func(*config) {}, wantErr: `env X_SECS="soon": want seconds or a duration like 10s`},
		{name: "bad alias variable named", env: vars{"X_STR_OLD": "ok", "X_BOOL": "yes"}, want: func(c *config) { c.Str = "ok" },
			wantErr: `env X_BOOL="yes"`},
		{name: "every bad variable reported", env: vars{"X_INT": "x", "X_DUR": "y"}, want: func(*config) {},
			wantErr: "env X_INT=\"x\": strconv.Atoi: parsing \"x\": invalid syntax\nenv X_DUR=\"y\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, got := declare(tc.env)
			if err := s.FlagSet().Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			want := defaults
			tc.want(&want)
			if *got != want {
				t.Errorf("config %+v, want %+v", *got, want)
			}
			err := s.Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSet_PrintDefaults(t *testing.T) {
	s, _ := declare(vars{"X_STR": "secret", "X_INT": "99"})
	var out bytes.Buffer
	s.PrintDefaults(&out)
	help := out.String()
	for _, want := range []string{
		`-s, --str text`, `a text (default "def"; env X_STR or X_STR_OLD)`, // the built-in default, not the variable's value
		`--int int`, `an int (default "7"; env X_INT)`,
		`--bool  `, `a bool (env X_BOOL)`, // no default shown for false
		`--secs interval`, `(default "10s"; env X_SECS)`,
		`--level value`, `a level (default "1"; env X_LEVEL)`,
		"Deprecated, still accepted: --data-dir (now --data)",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, hidden := range []string{"secret", "99", "  --data-dir", "  --s "} {
		if strings.Contains(help, hidden) {
			t.Errorf("help shows %q:\n%s", hidden, help)
		}
	}
}

func TestSet_Env(t *testing.T) {
	s, _ := declare(nil)
	for name, want := range map[string]string{"str": "[X_STR X_STR_OLD]", "s": "[X_STR X_STR_OLD]", "data-dir": "[X_DATA]", "nope": "[]"} {
		if got := fmt.Sprint(s.Env(name)); got != want {
			t.Errorf("Env(%q) = %s, want %s", name, got, want)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"10", 10 * time.Second, false},
		{"0.5", 500 * time.Millisecond, false},
		{" 3 ", 3 * time.Second, false},
		{"90s", 90 * time.Second, false},
		{"1m30s", 90 * time.Second, false},
		{" 2m ", 2 * time.Minute, false},
		{"", 0, true},
		{"ten", 0, true},
	}
	for _, tc := range tests {
		got, err := envflag.ParseSeconds(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("ParseSeconds(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// ExampleSet binds a flag to a variable and its older name.
func ExampleSet() {
	env := map[string]string{"APP_TENANT": "", "APP_DOMAIN": "acme"}
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	s := envflag.New(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var tenant string
	s.String(&tenant, "tenant", "default", "tenant `id`", "APP_TENANT", "APP_DOMAIN")
	_ = fs.Parse(nil)
	fmt.Println(tenant, s.Err())
	s.PrintDefaults(os.Stdout)
	// Output:
	// acme <nil>
	//   --tenant id  tenant id (default "default"; env APP_TENANT or APP_DOMAIN)
}

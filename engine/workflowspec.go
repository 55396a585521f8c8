package engine

import (
	"bytes"
	"container/heap"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jetprop/jetprop/engine/domain"
)

// WorkflowMode says how a workflow's steps depend on each other.
type WorkflowMode string

// Workflow modes.
const (
	ModeDAG        WorkflowMode = "dag"        // steps wait for their depends_on (the default)
	ModeSequential WorkflowMode = "sequential" // each step also waits for the one declared before it
	ModeParallel   WorkflowMode = "parallel"   // every step starts at once; depends_on is refused
)

// RunIf says which outcome of its dependencies a step runs on.
type RunIf string

// Run conditions.
const (
	RunIfSuccess RunIf = "success" // every dependency completed (the default)
	RunIfFailure RunIf = "failure" // at least one dependency failed
	RunIfAlways  RunIf = "always"  // every dependency is terminal, whatever its outcome
)

// Defaults of a retry policy whose fields are left out.
const (
	DefaultRetryBackoff    = time.Second
	DefaultRetryMultiplier = 2.0
)

// WorkflowSpec is a declared workflow. Durations are Go duration strings
// ("1m30s"). Cron is five fields (minute hour day-of-month month
// day-of-week) of numbers, ranges, lists, steps and '*'; Timezone is an IANA
// name (UTC when empty).
type WorkflowSpec struct {
	Name     string       `json:"name"`
	Mode     WorkflowMode `json:"mode,omitempty"`
	FailFast bool         `json:"fail_fast,omitempty"`
	Deadline string       `json:"deadline,omitempty"`
	Cron     string       `json:"cron,omitempty"`
	Timezone string       `json:"timezone,omitempty"`
	Steps    []StepSpec   `json:"steps"`
}

// StepSpec is one step of a workflow. Inputs may hold
// ${steps.<name>.result}, replaced by that step's result when the step
// starts; StdinFrom names a step whose result becomes this step's stdin
// (a WASI pipe). Both must name an ancestor of the step. Env values may
// hold ${secret:<name>}, kept as written in the workflow and its tasks and
// replaced by the secret's value only in the start message (SecretRefs).
type StepSpec struct {
	Name            string            `json:"name"`
	Module          string            `json:"module"` // name:tag, sha256:<hex> or an OCI reference
	Function        string            `json:"function,omitempty"`
	Inputs          Inputs            `json:"inputs,omitempty"`
	Env             map[string]string `json:"env,omitempty"`
	StdinFrom       string            `json:"stdin_from,omitempty"`
	DependsOn       []string          `json:"depends_on,omitempty"`
	RunIf           RunIf             `json:"run_if,omitempty"`
	Retry           *RetryPolicy      `json:"retry,omitempty"`
	Timeout         string            `json:"timeout,omitempty"`           // per attempt
	ScheduleToStart string            `json:"schedule_to_start,omitempty"` // from ready to started
	Placement       StepPlacement     `json:"placement,omitzero"`
}

// Inputs are a step's inputs. In JSON each may be a string, a number or a
// boolean, kept as written ("10", "2.5", "true"), so the API takes what a
// YAML spec takes (inputs: [10, 20]) and what Propeller's API takes.
type Inputs []string

// UnmarshalJSON accepts null, or an array of strings, numbers and booleans.
func (in *Inputs) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("inputs: want an array of strings or numbers: %w", err)
	}
	if raw == nil {
		*in = nil
		return nil
	}
	out := make(Inputs, 0, len(raw))
	for i, r := range raw {
		v, err := scalarInput(r)
		if err != nil {
			return fmt.Errorf("inputs[%d]: %w", i, err)
		}
		out = append(out, v)
	}
	*in = out
	return nil
}

func scalarInput(r json.RawMessage) (string, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(r))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", fmt.Errorf("want a string or number, got %.20s", r)
}

// RetryPolicy says how often and how late a failed step is tried again.
// Attempt n+1 starts Backoff(n) after attempt n failed.
type RetryPolicy struct {
	MaxAttempts    int     `json:"max_attempts"`              // counting the first; 0 or 1: no retry
	InitialBackoff string  `json:"initial_backoff,omitempty"` // DefaultRetryBackoff when empty
	Multiplier     float64 `json:"multiplier,omitempty"`      // DefaultRetryMultiplier when 0
	MaxBackoff     string  `json:"max_backoff,omitempty"`     // no cap when empty
}

// StepPlacement says where a step runs: a device, the devices matching a
// selector, or (Broadcast) every matching device. MinSuccess is the quorum
// of a fan-out step: how many devices must succeed (all when 0).
type StepPlacement struct {
	Device     string            `json:"device,omitempty"`
	Selector   map[string]string `json:"selector,omitempty"`
	Broadcast  bool              `json:"broadcast,omitempty"`
	MinSuccess int               `json:"min_success,omitempty"`
}

// EffectiveMode is the mode with its default.
func (s WorkflowSpec) EffectiveMode() WorkflowMode {
	if s.Mode == "" {
		return ModeDAG
	}
	return s.Mode
}

// EffectiveRunIf is the condition with its default.
func (s StepSpec) EffectiveRunIf() RunIf {
	if s.RunIf == "" {
		return RunIfSuccess
	}
	return s.RunIf
}

// MaxAttempts is how many attempts the step may make (at least 1).
func (s StepSpec) MaxAttempts() int {
	if s.Retry == nil || s.Retry.MaxAttempts < 1 {
		return 1
	}
	return s.Retry.MaxAttempts
}

// Backoff is the wait after failed attempt n (1-based) before attempt n+1:
// initial × multiplier^(n-1), capped at max_backoff. The spec must be valid.
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	initial := durationOr(p.InitialBackoff, DefaultRetryBackoff)
	mult := p.Multiplier
	if mult == 0 {
		mult = DefaultRetryMultiplier
	}
	d := float64(initial) * math.Pow(mult, float64(max(attempt, 1)-1))
	limit := durationOr(p.MaxBackoff, time.Duration(math.MaxInt64))
	if d >= float64(limit) {
		return limit
	}
	return time.Duration(d)
}

func durationOr(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil && s != "" {
		return d
	}
	return def
}

var (
	stepNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	stepRefRE  = regexp.MustCompile(`\$\{steps\.([^.}]*)\.result\}`)
)

// Validate checks the spec and reports every problem it finds in one
// error wrapping domain.ErrInvalid.
func (s WorkflowSpec) Validate() error {
	v := &specCheck{}
	s.checkWorkflow(v)
	s.checkBounds(v)
	if len(s.Steps) > MaxWorkflowSteps { // not worth checking further
		return fmt.Errorf("%w: workflow %q: %s", domain.ErrInvalid, clipName(s.Name), strings.Join(v.problems, "; "))
	}
	idx := v.checkNames(s.Steps)
	for i, st := range s.Steps {
		v.checkStep(s.EffectiveMode(), i, st)
	}
	if len(v.problems) == 0 {
		deps := v.checkDeps(s, idx)
		if len(v.problems) == 0 {
			v.checkCycle(s.Steps, deps)
		}
		if len(v.problems) == 0 {
			v.checkRefs(s.Steps, idx, deps)
		}
	}
	if len(v.problems) > 0 {
		return fmt.Errorf("%w: workflow %q: %s", domain.ErrInvalid, clipName(s.Name), strings.Join(v.problems, "; "))
	}
	return nil
}

type specCheck struct{ problems []string }

func (v *specCheck) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (s WorkflowSpec) checkWorkflow(v *specCheck) {
	if s.Name == "" {
		v.addf("name is required")
	}
	switch s.Mode {
	case "", ModeDAG, ModeSequential, ModeParallel:
	default:
		v.addf("mode %q: want dag, sequential or parallel", s.Mode)
	}
	v.duration("deadline", s.Deadline)
	if s.Cron != "" {
		if err := ValidateCron(s.Cron); err != nil {
			v.addf("cron %q: %v", s.Cron, err)
		}
	}
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			v.addf("timezone %q: %v", s.Timezone, err)
		}
	}
	if len(s.Steps) == 0 {
		v.addf("at least one step is required")
	}
}

func (v *specCheck) duration(what, s string) {
	if s == "" {
		return
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		v.addf("%s %q is not a duration (e.g. 30s, 5m, 1h)", what, s)
	case d < 0:
		v.addf("%s %q is negative", what, s)
	}
}

func (v *specCheck) checkNames(steps []StepSpec) map[string]int {
	idx := make(map[string]int, len(steps))
	for i, st := range steps {
		if !stepNameRE.MatchString(st.Name) {
			v.addf("step %d: name %q must be 1 to 64 letters, digits, '-' or '_'", i+1, clipName(st.Name))
			continue
		}
		if _, dup := idx[st.Name]; dup {
			v.addf("duplicate step name %q", st.Name)
			continue
		}
		idx[st.Name] = i
	}
	return idx
}

func (v *specCheck) checkStep(mode WorkflowMode, i int, st StepSpec) {
	at := fmt.Sprintf("step %q", clipName(st.Name))
	v.checkStepBounds(at, st)
	v.checkModule(at, st.Module)
	switch st.RunIf {
	case "", RunIfSuccess, RunIfFailure, RunIfAlways:
	default:
		v.addf("%s: run_if %q: want success, failure or always", at, st.RunIf)
	}
	if mode == ModeParallel && len(st.DependsOn) > 0 {
		v.addf("%s: depends_on in a parallel workflow (use mode dag)", at)
	}
	v.duration(at+": timeout", st.Timeout)
	v.stepTimeout(at, st.Timeout)
	v.duration(at+": schedule_to_start", st.ScheduleToStart)
	if st.Retry != nil {
		v.checkRetry(at, *st.Retry)
		v.checkRetryBounds(at, *st.Retry)
	}
	v.checkPlacement(at, st.Placement)
	_, bad := secretRefs(st.Env)
	for _, p := range append(EnvProblems(st.Env), bad...) {
		v.addf("%s: %s", at, p)
	}
}

func (v *specCheck) checkModule(at, m string) {
	switch {
	case m == "":
		v.addf("%s: module is required", at)
	case strings.ContainsAny(m, " \t\n"):
		v.addf("%s: module %q contains white space", at, m)
	case strings.HasPrefix(m, domain.DigestPrefix) && !domain.ValidDigest(m):
		v.addf("%s: module %q: a digest is sha256: and 64 lower-case hex digits", at, m)
	}
}

func (v *specCheck) checkRetry(at string, r RetryPolicy) {
	if r.MaxAttempts < 0 {
		v.addf("%s: retry max_attempts %d is negative", at, r.MaxAttempts)
	}
	if r.Multiplier != 0 && r.Multiplier < 1 {
		v.addf("%s: retry multiplier %g must be at least 1", at, r.Multiplier)
	}
	v.duration(at+": retry initial_backoff", r.InitialBackoff)
	v.duration(at+": retry max_backoff", r.MaxBackoff)
}

// FanOut reports whether the step runs once per matching device.
func (p StepPlacement) FanOut() bool { return p.Broadcast || len(p.Selector) > 0 }

// Quorum is how many of n devices must succeed.
func (p StepPlacement) Quorum(n int) int {
	if p.MinSuccess > 0 {
		return p.MinSuccess
	}
	return n
}

func (v *specCheck) checkPlacement(at string, p StepPlacement) {
	fanOut := p.FanOut()
	switch {
	case p.MinSuccess < 0:
		v.addf("%s: placement min_success %d is negative", at, p.MinSuccess)
	case p.MinSuccess > 0 && !fanOut:
		v.addf("%s: placement min_success needs broadcast or a selector", at)
	}
	if p.Device != "" && fanOut {
		v.addf("%s: placement device and broadcast/selector exclude each other", at)
	}
}

// checkDeps resolves each step's dependencies (declared, plus the previous
// step in sequential mode) to indexes.
func (v *specCheck) checkDeps(s WorkflowSpec, idx map[string]int) [][]int {
	deps := make([][]int, len(s.Steps))
	for i, st := range s.Steps {
		for _, d := range st.DependsOn {
			j, ok := idx[d]
			switch {
			case !ok:
				v.addf("step %q: depends_on unknown step %q", st.Name, d)
			case j == i:
				v.addf("cycle: %s → %s", st.Name, st.Name)
			default:
				deps[i] = appendUnique(deps[i], j)
			}
		}
		if st.EffectiveRunIf() == RunIfFailure && len(st.DependsOn) == 0 && (s.EffectiveMode() != ModeSequential || i == 0) {
			v.addf("step %q: run_if failure without dependencies never runs", st.Name)
		}
	}
	if s.EffectiveMode() == ModeSequential {
		for i := 1; i < len(s.Steps); i++ {
			deps[i] = appendUnique(deps[i], i-1)
		}
	}
	return deps
}

func appendUnique(s []int, x int) []int {
	for _, y := range s {
		if y == x {
			return s
		}
	}
	return append(s, x)
}

// checkCycle finds a cycle by depth-first search in declaration order and
// names it in depends_on direction: "a → b" means a depends on b.
func (v *specCheck) checkCycle(steps []StepSpec, deps [][]int) {
	color := make([]byte, len(steps)) // 0 white, 1 on the path, 2 done
	var path []int
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = 1
		path = append(path, i)
		for _, j := range deps[i] {
			if color[j] == 1 {
				v.addf("cycle: %s", cycleText(steps, path, j))
				return true
			}
			if color[j] == 0 && visit(j) {
				return true
			}
		}
		path = path[:len(path)-1]
		color[i] = 2
		return false
	}
	for i := range steps {
		if color[i] == 0 && visit(i) {
			return
		}
	}
}

func cycleText(steps []StepSpec, path []int, back int) string {
	var names []string
	for k, i := range path {
		if i == back {
			for _, j := range path[k:] {
				names = append(names, steps[j].Name)
			}
			break
		}
	}
	return strings.Join(append(names, steps[back].Name), " → ")
}

func (v *specCheck) checkRefs(steps []StepSpec, idx map[string]int, deps [][]int) {
	for i, st := range steps {
		var refs []string
		for _, in := range st.Inputs {
			for _, m := range stepRefRE.FindAllStringSubmatch(in, -1) {
				refs = append(refs, m[1])
			}
		}
		anc := ancestors(deps, i)
		for _, r := range refs {
			v.checkRef(st.Name, "${steps."+r+".result}", r, idx, anc)
		}
		if st.StdinFrom != "" {
			v.checkRef(st.Name, "stdin_from", st.StdinFrom, idx, anc)
		}
	}
}

func (v *specCheck) checkRef(step, what, ref string, idx map[string]int, anc []bool) {
	j, ok := idx[ref]
	switch {
	case !ok:
		v.addf("step %q: %s refers to unknown step %q", step, what, ref)
	case !anc[j]:
		v.addf("step %q: %s refers to step %q, which is not one of its dependencies (add it to depends_on)", step, what, ref)
	}
}

// ancestors marks every step that step i depends on, directly or not.
func ancestors(deps [][]int, i int) []bool {
	seen := make([]bool, len(deps))
	stack := append([]int(nil), deps[i]...)
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !seen[j] {
			seen[j] = true
			stack = append(stack, deps[j]...)
		}
	}
	return seen
}

// Dependencies returns each step's dependencies as indexes into Steps:
// the declared ones plus, in sequential mode, the step before. Unknown
// names are left out (Validate reports them).
func (s WorkflowSpec) Dependencies() [][]int {
	idx := make(map[string]int, len(s.Steps))
	for i, st := range s.Steps {
		if _, dup := idx[st.Name]; !dup {
			idx[st.Name] = i
		}
	}
	return (&specCheck{}).checkDeps(s, idx)
}

// TopoOrder returns the step indexes so that each step comes after its
// dependencies, ties broken by declaration order (Kahn's algorithm). The
// spec must be valid (acyclic).
func (s WorkflowSpec) TopoOrder() []int {
	return topoOrder(s.Dependencies())
}

func topoOrder(deps [][]int) []int {
	n := len(deps)
	indeg := make([]int, n)
	children := make([][]int, n)
	for i, ds := range deps {
		indeg[i] = len(ds)
		for _, d := range ds {
			children[d] = append(children[d], i)
		}
	}
	ready := &intHeap{}
	for i := range n {
		if indeg[i] == 0 {
			heap.Push(ready, i)
		}
	}
	order := make([]int, 0, n)
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		order = append(order, i)
		for _, c := range children[i] {
			if indeg[c]--; indeg[c] == 0 {
				heap.Push(ready, c)
			}
		}
	}
	return order
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// cronFields are the bounds of the six cron fields (seconds first).
var cronFields = [6]struct {
	name     string
	min, max int
}{{"second", 0, 59}, {"minute", 0, 59}, {"hour", 0, 23}, {"day of month", 1, 31}, {"month", 1, 12}, {"day of week", 0, 7}}

var cronMacros = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// ValidateCron checks a cron expression: five fields (minute hour
// day-of-month month day-of-week), or six with seconds first, each field a
// comma-separated list of '*', n or n-m, each optionally followed by
// /step; or one of @yearly, @monthly, @weekly, @daily, @hourly.
func ValidateCron(expr string) error {
	if slices.Contains(cronMacros, strings.TrimSpace(expr)) {
		return nil
	}
	fields := strings.Fields(CronSchedule(expr))
	if len(fields) != 6 {
		return fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got %d", len(strings.Fields(expr)))
	}
	for i, f := range fields {
		for item := range strings.SplitSeq(f, ",") {
			if err := cronItem(item, cronFields[i].min, cronFields[i].max); err != nil {
				return fmt.Errorf("%s field %q: %v", cronFields[i].name, f, err)
			}
		}
	}
	return nil
}

// CronSchedule is expr as the six-field form the timers use: a five-field
// expression runs at second 0.
func CronSchedule(expr string) string {
	if fields := strings.Fields(expr); len(fields) == 5 {
		return "0 " + strings.Join(fields, " ")
	}
	return strings.TrimSpace(expr)
}

func cronItem(item string, lo, hi int) error {
	rng, step, hasStep := strings.Cut(item, "/")
	if hasStep {
		n, err := strconv.Atoi(step)
		if err != nil || n < 1 {
			return fmt.Errorf("step %q must be a positive number", step)
		}
	}
	if rng == "*" {
		return nil
	}
	a, b, isRange := strings.Cut(rng, "-")
	from, err := cronNumber(a, lo, hi)
	if err != nil {
		return err
	}
	if !isRange {
		return nil
	}
	to, err := cronNumber(b, lo, hi)
	if err != nil {
		return err
	}
	if from > to {
		return fmt.Errorf("range %q runs backwards", rng)
	}
	return nil
}

func cronNumber(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number, range or '*'", s)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
	}
	return n, nil
}

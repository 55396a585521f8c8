package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// WorkflowView is the read model of workflows.
type WorkflowView interface {
	Get(id string) (engine.Workflow, bool)
	// List returns up to limit workflows from offset, newest first, and
	// the total.
	List(offset, limit int) ([]engine.Workflow, int)
	// Running returns the ids of the workflows that have not ended.
	Running() []string
	// Version returns the workflow's last sequence and whether it ended,
	// without copying it.
	Version(id string) (seq uint64, ended, ok bool)
	LastSeq() uint64
	WaitFor(ctx context.Context, seq uint64) error
}

// WithWorkflows gives the service the workflows read model.
func WithWorkflows(v WorkflowView) ServiceOption {
	return func(s *Service) { s.workflows = v }
}

// WorkflowOptions are how a workflow is created.
type WorkflowOptions struct {
	Held   bool   // nothing starts until StartWorkflow (Propeller's jobs)
	Source string // "job" or "workflow" for Propeller's API, empty for ours
	Key    Key    // an idempotency key: see CreateWorkflowOnce
}

// CreateWorkflow validates spec, checks that every step's module and
// every secret its steps' env refer to is known, and records the workflow. Nothing is stored when it is refused. The
// workflow process manager starts its first steps (once released, if held).
func (s *Service) CreateWorkflow(ctx context.Context, spec engine.WorkflowSpec, opts WorkflowOptions) (engine.Workflow, error) {
	w, _, err := s.CreateWorkflowOnce(ctx, spec, opts)
	return w, err
}

// CreateWorkflowOnce is CreateWorkflow under opts.Key, as CreateTaskOnce
// is CreateTask: one workflow per key, replayed true for the creates that
// found it made; the request compared is spec, Held and Source.
func (s *Service) CreateWorkflowOnce(ctx context.Context, spec engine.WorkflowSpec, opts WorkflowOptions) (w engine.Workflow, replayed bool, err error) {
	cmd, err := s.workflowCreate(ctx, spec, opts)
	if err != nil {
		return engine.Workflow{}, false, err
	}
	if opts.Key.Value == "" {
		w, err = s.Workflow(ctx, cmd)
		return w, false, err
	}
	w, err = s.h.Workflow(ctx, cmd)
	if errors.Is(err, domain.ErrExists) {
		if err := sameRequest(opts.Key, "workflow", w.ID, cmd.RequestDigest, w.RequestDigest, false); err != nil {
			return engine.Workflow{}, false, err
		}
		replayed = true
	} else if err != nil {
		return w, false, err
	}
	if s.workflows != nil {
		w, err = readBack(ctx, s.readTimeout, s.workflows, w.ID, w.Seq, w)
	}
	return w, replayed, err
}

// workflowCreate checks spec and returns the command that records it.
func (s *Service) workflowCreate(ctx context.Context, spec engine.WorkflowSpec, opts WorkflowOptions) (engine.CreateWorkflow, error) {
	cmd := engine.CreateWorkflow{ID: s.h.IDs().New(), Spec: spec, At: s.h.Now(), Held: opts.Held, Source: opts.Source}
	if err := spec.Validate(); err != nil {
		return cmd, err
	}
	if err := s.checkModules(ctx, spec); err != nil {
		return cmd, err
	}
	for _, st := range spec.Steps {
		if err := s.checkSecretRefs(fmt.Sprintf("workflow %q: step %q", spec.Name, st.Name), st.Env); err != nil {
			return cmd, err
		}
	}
	if opts.Key.Value == "" {
		return cmd, nil
	}
	cmd.ID = opts.Key.ID()
	var err error
	cmd.RequestDigest, err = requestDigest(struct {
		Spec   engine.WorkflowSpec
		Held   bool
		Source string
	}{spec, opts.Held, opts.Source})
	return cmd, err
}

// StartWorkflow releases a held workflow; one already released or ended
// is returned unchanged.
func (s *Service) StartWorkflow(ctx context.Context, id string) (engine.Workflow, error) {
	if _, err := s.GetWorkflow(id); err != nil {
		return engine.Workflow{}, err
	}
	return s.Workflow(ctx, engine.ReleaseWorkflow{ID: id})
}

// checkModules refuses a step whose module is neither stored (a digest or a
// catalog name:tag) nor a remote reference (an OCI reference with a
// registry path, or an http(s) URL) the engine fetches when the step runs.
func (s *Service) checkModules(ctx context.Context, spec engine.WorkflowSpec) error {
	var problems []string
	for _, st := range spec.Steps {
		if err := s.checkStepModule(ctx, st); err != nil {
			problems = append(problems, fmt.Sprintf("step %q: %v", st.Name, strings.TrimPrefix(err.Error(), domain.ErrInvalid.Error()+": ")))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: workflow %q: %s", domain.ErrInvalid, spec.Name, strings.Join(problems, "; "))
	}
	return nil
}

// checkStepModule checks a step's module as a task's image is checked
// (StoredModule), and the function it calls (engine.DefaultStepFunction
// when it names none) against a stored module's exports.
func (s *Service) checkStepModule(ctx context.Context, st engine.StepSpec) error {
	digest, _, err := s.StoredModule(ctx, st.Module)
	if err != nil || digest == "" {
		return err
	}
	return s.checkFunction(ctx, cmp.Or(st.Function, engine.DefaultStepFunction), digest, st.Module)
}

// CreateStepTask creates the task of one workflow step attempt under a
// given id; a task that exists already is returned as it is (the process
// manager repeats this after a crash).
func (s *Service) CreateStepTask(ctx context.Context, id string, spec events.TaskCreated) (engine.Task, error) {
	if t, ok := s.tasks.Get(id); ok {
		return t, nil
	}
	if err := s.resolveImage(ctx, &spec); err != nil {
		return engine.Task{}, err
	}
	t, err := s.do(ctx, engine.CreateTask{ID: id, Spec: spec})
	if errors.Is(err, domain.ErrExists) {
		return t, nil // created by an earlier run of the process manager
	}
	return t, err
}

// IsRemoteModule reports whether a task's image or a step's module is
// fetched from elsewhere: an http(s) URL, or an OCI reference whose first
// path element is a registry host ("registry:5000/name:tag",
// "ghcr.io/org/name@sha256:…"; domain.IsRegistryHost). Anything else
// ("name:tag", "org/name:tag", a digest) names the catalog.
func IsRemoteModule(module string) bool {
	lower := strings.ToLower(module)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		return true
	}
	first, rest, ok := strings.Cut(module, "/")
	return ok && rest != "" && domain.IsRegistryHost(first)
}

// GetWorkflow returns one workflow from the read model.
func (s *Service) GetWorkflow(id string) (engine.Workflow, error) {
	if s.workflows != nil {
		if w, ok := s.workflows.Get(id); ok {
			return w, nil
		}
	}
	return engine.Workflow{}, s.notFound(events.WorkflowAggregate(id), fmt.Errorf("workflow %q: %w", id, domain.ErrNotFound))
}

// ListWorkflows returns a page of workflows, newest first, and the total.
func (s *Service) ListWorkflows(offset, limit int) ([]engine.Workflow, int) {
	if s.workflows == nil {
		return nil, 0
	}
	return s.workflows.List(offset, limit)
}

// CancelWorkflow ends a running workflow: steps not started are skipped,
// running tasks are stopped. Cancelling an ended workflow changes nothing.
func (s *Service) CancelWorkflow(ctx context.Context, id, reason string) (engine.Workflow, error) {
	if _, err := s.GetWorkflow(id); err != nil {
		return engine.Workflow{}, err
	}
	if reason == "" {
		reason = "cancelled by a user"
	}
	return s.Workflow(ctx, engine.CancelWorkflow{ID: id, Reason: reason})
}

// WaitWorkflow blocks until the workflow changes past seq (or ends) and
// returns it; with seq 0 it returns the current state at once.
func (s *Service) WaitWorkflow(ctx context.Context, id string, seq uint64) (engine.Workflow, error) {
	if _, err := s.GetWorkflow(id); err != nil {
		return engine.Workflow{}, err
	}
	for {
		last := s.workflows.LastSeq() // before the version: see WaitTask
		v, ended, _ := s.workflows.Version(id)
		if ended || v > seq {
			return s.GetWorkflow(id)
		}
		if err := s.workflows.WaitFor(ctx, last+1); err != nil {
			w, _ := s.GetWorkflow(id)
			return w, err
		}
	}
}

// Workflow executes a workflow command and waits until the read model
// shows it (the process manager's way in).
func (s *Service) Workflow(ctx context.Context, cmd engine.WorkflowCommand) (engine.Workflow, error) {
	w, err := s.h.Workflow(ctx, cmd)
	if err != nil || s.workflows == nil {
		return w, err
	}
	return readBack(ctx, s.readTimeout, s.workflows, w.ID, w.Seq, w)
}

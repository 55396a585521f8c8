package service

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
	"github.com/jetprop/jetprop/events"
)

// Modules stores module bytes by content digest (the MODULES object store).
type Modules interface {
	// Put validates and stores a module, returning its "sha256:<hex>" digest.
	Put(ctx context.Context, r io.Reader) (digest string, size int64, err error)
	// Stat returns the size of a stored module; ok is false when it is not stored.
	Stat(ctx context.Context, digest string) (size int64, ok bool, err error)
	// Open streams a stored module and returns its size.
	Open(ctx context.Context, digest string) (io.ReadCloser, int64, error)
	// Delete removes a module; removing one that is not stored is no error.
	Delete(ctx context.Context, digest string) error
}

// TaskView is the read model of tasks the service answers from. It keeps
// the placement index: the load per device, the turn, and which devices
// are placeable, which New has it learn from the DeviceView and the
// handler's quarantine.
type TaskView interface {
	Get(id string) (engine.Task, bool)
	List(offset, limit int) ([]engine.Task, int)
	// Filter is a page of the tasks match keeps, and how many it keeps.
	Filter(match func(engine.Task) bool, offset, limit int) ([]engine.Task, int)
	Load() map[string]int
	LoadOf(device string) int
	LastSeq() uint64
	WaitFor(ctx context.Context, seq uint64) error
	// Place is engine.PlaceOn over the placeable devices at the current turn.
	Place(target string) string
	// SetPlaceable and Hold tell the index which devices are placeable.
	SetPlaceable(device string, up bool)
	Hold(device string)
}

// DeviceView is the read model of devices.
type DeviceView interface {
	Get(id string) (engine.Device, bool)
	List() []engine.Device
	Page(offset, limit int) ([]engine.Device, int)
	// UpShared is the placeable devices by id, a slice shared by every
	// caller: never modified.
	UpShared() []engine.Device
	// ObservePlaceable calls fn with every placeable device, then with
	// every change, in order.
	ObservePlaceable(fn func(id string, placeable bool))
	WaitFor(ctx context.Context, seq uint64) error
}

// DefaultReadTimeout bounds how long a command waits for its own write to
// show in the read model, unless WithReadTimeout says otherwise.
const DefaultReadTimeout = 10 * time.Second

// Service is the application's use cases: what the HTTP API and the CLI do.
type Service struct {
	h         *Handler
	tasks     TaskView
	devices   DeviceView
	modules   Modules
	artifacts ArtifactView
	importer  Importer // nil: no OCI import or export
	workflows WorkflowView
	tokens    TokenView             // nil: no API tokens
	secrets   SecretView            // nil: no secrets
	sealer    Sealer                // nil: secrets are neither set nor opened
	exports   *stateCache[[]string] // the exported functions of stored modules, by digest
	slots     int                   // tasks a start places on one device at most; 0: no cap

	readTimeout time.Duration // how long a command waits to read its own write
}

// ServiceOption configures a Service.
type ServiceOption func(*Service)

// WithArtifacts gives the service the artifact catalog (name:tag → digest).
// Without it the service knows no artifact names, only module digests.
func WithArtifacts(v ArtifactView) ServiceOption {
	return func(s *Service) {
		if v != nil {
			s.artifacts = v
		}
	}
}

// WithReadTimeout bounds how long a command waits for its own write to
// show in the read model (default DefaultReadTimeout); past it the command
// fails with a domain.ErrBehind, its write stored.
func WithReadTimeout(d time.Duration) ServiceOption {
	return func(s *Service) {
		if d > 0 {
			s.readTimeout = d
		}
	}
}

// WithTaskSlots caps the tasks a start places on one device (scheduled
// or running there): a device at the cap is busy, and a start that finds
// every device busy is refused (domain.ErrNoDevice) or, for a cron
// firing, waits by priority (TaskCron). 0, the default, is no cap. The
// cap is checked at placement, so concurrent starts may pass it by as
// many as are in flight; an attempt placed again after a loss is not
// held by it, and a broadcast runs on every device whatever its load.
func WithTaskSlots(n int) ServiceOption {
	return func(s *Service) { s.slots = max(n, 0) }
}

// New wires the use cases.
func New(h *Handler, tasks TaskView, devices DeviceView, modules Modules, opts ...ServiceOption) *Service {
	s := &Service{h: h, tasks: tasks, devices: devices, modules: modules, artifacts: noArtifacts{}, readTimeout: DefaultReadTimeout,
		exports: newStateCache[[]string](maxCachedExports)}
	for _, o := range opts {
		o(s)
	}
	s.linkPlacement()
	return s
}

// linkPlacement has the tasks read model's placement index follow which
// devices are placeable: up and not revoked as the devices read model
// shows them, and not held by the handler's quarantine (a quarantined
// device keeps its last good state, which may say up forever).
func (s *Service) linkPlacement() {
	if s.tasks == nil || s.devices == nil {
		return
	}
	if q := s.quarantine(); q != nil {
		hold := func(r events.Quarantined) {
			if r.Aggregate.Kind == events.KindDevice {
				s.tasks.Hold(r.Aggregate.ID)
			}
		}
		q.Observe(hold) // first, so nothing added meanwhile is missed
		for _, r := range q.List() {
			hold(r)
		}
	}
	s.devices.ObservePlaceable(s.tasks.SetPlaceable)
}

// CreateTask creates a pending task; module, when not nil, is stored first.
// Its env may refer to secrets that exist (${secret:NAME}); the reference is
// stored, the value is put in only by the dispatcher, in the start message.
// An image that names a stored module (an artifact name:tag, or a digest)
// becomes the task's module; any other image (an OCI reference, a URL) is
// left for the proplet to fetch.
func (s *Service) CreateTask(ctx context.Context, spec events.TaskCreated, module io.Reader) (engine.Task, error) {
	spec, err := s.taskSpec(ctx, spec, module, false)
	if err != nil {
		return engine.Task{}, err
	}
	return s.do(ctx, engine.CreateTask{ID: s.h.IDs().New(), Spec: spec})
}

// taskSpec checks spec's secret references, stores module (when not nil)
// or resolves the image, and returns the creation to record; with digest
// it holds the RequestDigest of the spec as sent (and of module's digest).
// It refuses, before anything is stored, what would certainly fail later
// (engine.ValidateTaskSpec, an image not stored that names the catalog, a
// function the module cannot be called by: engine.CheckFunction).
func (s *Service) taskSpec(ctx context.Context, spec events.TaskCreated, module io.Reader, digest bool) (events.TaskCreated, error) {
	if err := engine.ValidateTaskSpec(spec); err != nil {
		return spec, err
	}
	if err := s.checkSecretRefs("task", spec.Env); err != nil {
		return spec, err
	}
	var err error
	if module != nil {
		if spec.Module, spec.ModuleSize, err = s.putChecked(ctx, spec.Name, module); err != nil {
			return spec, err
		}
	}
	if digest {
		if spec.RequestDigest, err = requestDigest(spec); err != nil {
			return spec, err
		}
	}
	if module == nil {
		err = s.resolveStored(ctx, &spec)
	}
	return spec, err
}

// resolveStored resolves the image (resolveImage) and checks the function
// against the stored module it names.
func (s *Service) resolveStored(ctx context.Context, spec *events.TaskCreated) error {
	if err := s.resolveImage(ctx, spec); err != nil || spec.Module == "" {
		return err
	}
	return s.checkFunction(ctx, spec.Name, spec.Module, spec.ImageURL)
}

// UploadModule stores a module and attaches it to task id.
func (s *Service) UploadModule(ctx context.Context, id string, module io.Reader) (engine.Task, error) {
	t, err := s.GetTask(id)
	if err != nil {
		return engine.Task{}, err
	}
	digest, size, err := s.putChecked(ctx, t.Name, module)
	if err != nil {
		return engine.Task{}, err
	}
	return s.do(ctx, engine.AttachModule{ID: id, Module: digest, Size: size})
}

// StartTask places the task's next attempt on a device.
func (s *Service) StartTask(ctx context.Context, id string) (engine.Task, error) {
	t, err := s.GetTask(id)
	if err != nil {
		return engine.Task{}, err
	}
	if t.Broadcast {
		return s.startBroadcast(ctx, t)
	}
	device := s.placeStart(t.TargetDevice)
	switch {
	case device == "" && t.TargetDevice != "" && s.place(t.TargetDevice) != "":
		return engine.Task{}, fmt.Errorf("%w: proplet %q is busy (%d tasks, the cap per proplet)", domain.ErrNoDevice, t.TargetDevice, s.slots)
	case device == "" && t.TargetDevice != "":
		return engine.Task{}, fmt.Errorf("%w: proplet %q is not alive", domain.ErrNoDevice, t.TargetDevice)
	case device == "" && s.slots > 0 && s.place("") != "":
		return engine.Task{}, fmt.Errorf("%w: every alive proplet is busy (%d tasks, the cap per proplet)", domain.ErrNoDevice, s.slots)
	}
	return s.do(ctx, engine.ScheduleTask{ID: id, Device: device})
}

// ReplaceUndelivered ends attempt of task id, whose device did not accept
// its start in time: the device is marked unreachable (so it is not
// placeable), then the task goes to another device, or fails when no other
// may take it. An attempt that is no longer waiting is left alone.
func (s *Service) ReplaceUndelivered(ctx context.Context, id string, attempt int, reason string) error {
	t, err := s.GetTask(id)
	if err != nil || t.State != engine.TaskScheduled || t.Attempt != attempt {
		return err
	}
	if _, err := s.device(ctx, engine.MarkUnreachable{ID: t.Device, Reason: reason}); err != nil {
		return err
	}
	next := ""
	if t.TargetDevice == "" {
		next = s.place("")
	}
	_, err = s.do(ctx, engine.ReplaceTask{ID: id, Attempt: attempt, Device: next, Reason: reason})
	return err
}

// place returns the device a task with this target device ("" for any)
// goes to now, or "" when none may take it: engine.PlaceOn over the
// index the tasks read model keeps, in O(log n).
func (s *Service) place(target string) string {
	return s.tasks.Place(target)
}

// placeStart is place for a start: "" when the device it would pick
// holds WithTaskSlots tasks already (the least loaded does, so every one
// does).
func (s *Service) placeStart(target string) string {
	device := s.place(target)
	if s.slots > 0 && device != "" && s.tasks.LoadOf(device) >= s.slots {
		return ""
	}
	return device
}

// StopTask stops a scheduled or running task.
func (s *Service) StopTask(ctx context.Context, id string) (engine.Task, error) {
	if t, err := s.GetTask(id); err == nil && t.Broadcast {
		return s.stopBroadcast(ctx, t)
	}
	return s.do(ctx, engine.StopTask{ID: id})
}

// DeleteTask deletes a task that is not running.
func (s *Service) DeleteTask(ctx context.Context, id string) error {
	if t, err := s.GetTask(id); err == nil && t.Broadcast {
		return s.deleteBroadcast(ctx, id)
	}
	_, err := s.do(ctx, engine.DeleteTask{ID: id})
	return err
}

// GetTask returns one task from the read model.
func (s *Service) GetTask(id string) (engine.Task, error) {
	t, ok := s.tasks.Get(id)
	if !ok {
		return engine.Task{}, s.notFound(events.TaskAggregate(id), fmt.Errorf("task %q: %w", id, domain.ErrNotFound))
	}
	return t, nil
}

// ListTasks returns a page of tasks and the total.
func (s *Service) ListTasks(offset, limit int) ([]engine.Task, int) {
	return s.tasks.List(offset, limit)
}

// FilterTasks returns a page of the tasks match keeps, in creation
// order, and how many it keeps.
func (s *Service) FilterTasks(match func(engine.Task) bool, offset, limit int) ([]engine.Task, int) {
	return s.tasks.Filter(match, offset, limit)
}

// WaitTask blocks until task id is terminal or ctx is done, and returns it.
// It reads the sequence before the task: the read model shows an event
// before its sequence (the projection folds, then advances), so the task
// read after seq holds every event up to seq, and one folded after the
// read of the task is at seq+1 or later. Read the other way round, an
// event folded between the two reads would be waited for again, and with
// nothing appended after it WaitTask would wait until ctx is done.
func (s *Service) WaitTask(ctx context.Context, id string) (engine.Task, error) {
	for {
		seq := s.tasks.LastSeq()
		t, err := s.GetTask(id)
		if err != nil || t.State.Terminal() {
			return t, err
		}
		if err := s.tasks.WaitFor(ctx, seq+1); err != nil {
			return t, err
		}
	}
}

// GetDevice returns one device.
func (s *Service) GetDevice(id string) (engine.Device, error) {
	d, ok := s.devices.Get(id)
	if !ok {
		return engine.Device{}, s.notFound(events.DeviceAggregate(id), fmt.Errorf("proplet %q: %w", id, domain.ErrNotFound))
	}
	return d, nil
}

// ListDevices returns every device sorted by id.
func (s *Service) ListDevices() []engine.Device { return s.devices.List() }

// DevicePage returns up to limit devices from offset, sorted by id, and
// the total; it copies only the page.
func (s *Service) DevicePage(offset, limit int) ([]engine.Device, int) {
	return s.devices.Page(offset, limit)
}

// TaskLoad returns the number of active tasks per device.
func (s *Service) TaskLoad() map[string]int { return s.tasks.Load() }

// DeviceLoad returns the number of active tasks on one device.
func (s *Service) DeviceLoad(id string) int { return s.tasks.LoadOf(id) }

// do executes a task command and waits until the read model shows it.
func (s *Service) do(ctx context.Context, cmd engine.TaskCommand) (engine.Task, error) {
	t, err := s.h.Task(ctx, cmd)
	if err != nil {
		return t, err
	}
	return readBack(ctx, s.readTimeout, s.tasks, t.ID, t.Seq, t)
}

// readModel is a read model a written state is read back from.
type readModel[S any] interface {
	Get(id string) (S, bool)
	WaitFor(ctx context.Context, seq uint64) error
}

// readBack waits (at most timeout) until view shows sequence seq and
// returns id as view shows it, or written if it shows none: a caller reads
// its own write. When the read model does not catch up in time it returns
// written and a domain.ErrBehind: the write stands.
func readBack[S any](ctx context.Context, timeout time.Duration, view readModel[S], id string, seq uint64, written S) (S, error) {
	if err := waitView(ctx, timeout, view, seq); err != nil {
		return written, fmt.Errorf("%s stored at sequence %d: %w", id, seq, err)
	}
	if cur, ok := view.Get(id); ok {
		return cur, nil
	}
	return written, nil
}

// waitView waits at most timeout until view shows sequence seq. A wait
// that timeout ends, not ctx, is a domain.ErrBehind.
func waitView(ctx context.Context, timeout time.Duration, view interface {
	WaitFor(ctx context.Context, seq uint64) error
}, seq uint64) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := view.WaitFor(wctx, seq)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%w: %w", domain.ErrBehind, err)
	}
	return err
}

// QuarantineView is the read side of the quarantine (an
// *events.Quarantine): the aggregates stopped by a stored message that
// cannot be read, and the event streams found damaged at start.
type QuarantineView interface {
	Get(agg events.Aggregate) (events.Quarantined, bool)
	List() []events.Quarantined
	Len() int
	Streams() []events.StreamProblem
}

// Quarantine is what the service refuses commands by (the handler's).
func (s *Service) Quarantine() QuarantineView { return s.h.quarantine }

// placeable returns the devices that may take tasks, sorted by id: up,
// not revoked, and not quarantined (a quarantined device's state is its
// last good one, and its heartbeats and last will are refused, so up may
// be stale forever). The slice is shared: never modify it. It is the read
// model's snapshot unless a device is quarantined, so a workflow
// reconcile does not copy the fleet.
func (s *Service) placeable() []engine.Device {
	up, q := s.devices.UpShared(), s.quarantine()
	if q.Len() == 0 {
		return up
	}
	held := map[string]bool{}
	for _, r := range q.List() {
		if r.Aggregate.Kind == events.KindDevice {
			held[r.Aggregate.ID] = true
		}
	}
	if len(held) == 0 {
		return up
	}
	return slices.DeleteFunc(slices.Clone(up), func(d engine.Device) bool { return held[d.ID] })
}

// quarantine is the handler's quarantine; nil without a handler.
func (s *Service) quarantine() *events.Quarantine {
	if s.h == nil {
		return nil
	}
	return s.h.quarantine
}

// notFound is the error for agg missing from its read model: the
// quarantine's refusal when no good event of it could be read, else err.
func (s *Service) notFound(agg events.Aggregate, err error) error {
	if qerr := s.h.quarantine.Check(agg); qerr != nil {
		return qerr
	}
	return err
}

package service

// Unexported parts the external tests and benchmarks reach.
var (
	ServicePlace    = (*Service).place
	ManagerObserved = (*WorkflowManager).observed
)

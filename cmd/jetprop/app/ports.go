package app

import (
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/projections"
)

// The read models are the views the services answer from.
var (
	_ service.TaskView     = (*projections.Tasks)(nil)
	_ service.DeviceView   = (*projections.Devices)(nil)
	_ service.ArtifactView = (*projections.Artifacts)(nil)
	_ service.WorkflowView = (*projections.Workflows)(nil)
)

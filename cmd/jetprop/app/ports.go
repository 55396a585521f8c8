package app

import (
	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/oci"
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

// The module store is where OCI imports go.
var _ oci.Store = (*artifacts.Store)(nil)

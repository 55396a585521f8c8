package app

import (
	"github.com/jetprop/jetprop/adapters/artifacts"
	"github.com/jetprop/jetprop/adapters/mqtt"
	"github.com/jetprop/jetprop/adapters/oci"
	"github.com/jetprop/jetprop/adapters/sealer"
	"github.com/jetprop/jetprop/engine/service"
	"github.com/jetprop/jetprop/projections"
)

// The read models are the views the services answer from.
var (
	_ service.TaskView     = (*projections.Tasks)(nil)
	_ service.DeviceView   = (*projections.Devices)(nil)
	_ service.ArtifactView = (*projections.Artifacts)(nil)
	_ service.WorkflowView = (*projections.Workflows)(nil)
	_ service.SecretView   = (*projections.Secrets)(nil)
)

// The service opens secrets for the dispatcher; the sealers seal them.
var (
	_ mqtt.SecretResolver = (*service.Service)(nil)
	_ service.Sealer      = (*sealer.AESGCM)(nil)
	_ service.Sealer      = (*sealer.KeyFile)(nil)
)

// The module store is where OCI imports go.
var _ oci.Store = (*artifacts.Store)(nil)

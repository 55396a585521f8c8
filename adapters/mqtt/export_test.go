package mqtt

// PartitionOf is the worker a device's messages go to, of n.
var PartitionOf = partition
var ErrIgnored = errIgnored

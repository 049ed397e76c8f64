// Package open turns a configured destination into a storage.Store.
//
// It is the only place that knows which config.Destination type maps to
// which backend, so the rest of Coffer depends on storage.Store alone.
// Opening a store does not contact the server; the first operation does.
package open

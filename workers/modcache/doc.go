// Package modcache keeps the wasm modules a proplet fetched on its disk,
// by sha256 digest, bounded in bytes with least-recently-used eviction, and
// the chunks of downloads still in progress, so that a proplet killed half
// way through a download asks only for the chunks it misses when it comes
// back.
//
//	c, err := modcache.Open(dir, 1<<30)
//	if b, err := c.Read(digest); err == nil { ...run b... }
//	p, err := c.Partial(appName)         // chunks kept from an earlier run
//	p.SetMeta(modcache.Meta{AppName: appName, Total: n})
//	p.Put(idx, data)                     // as chunks arrive, in any order
//	digest, b, err := c.Commit(p, want)  // once p.Complete()
//
// # Layout
//
//	<dir>/sha256/<hex>               complete modules, verified
//	<dir>/partial/<key>/meta.json    a download in progress: app_name, digest, total_chunks
//	<dir>/partial/<key>/<index>      its chunks, one file each
//	<dir>/tmp/                       modules being assembled
//
// A chunk is written to a temp file and renamed, so a chunk file is either
// whole or absent after the process dies. Commit streams the chunks in
// order into one file while hashing them (never holding the module twice
// in memory), checks the digest, renames the file into sha256/ and reads it
// back once for the caller. Nothing is fsynced (like the proplet's journal,
// the cache survives a killed process, not a power cut, by itself): the
// digest check on commit catches a chunk a power cut damaged, and the
// first Read of a module after Open hashes it again, so a damaged file is
// dropped and downloaded again rather than run.
//
// # Bound and order
//
// The modules in sha256/ take at most the bound given to Open, counting
// file sizes; when a Commit goes over it, the least recently used modules
// are removed (the one just committed last, so a module larger than the
// bound is still returned, then dropped). Use is recorded in each file's
// modification time (Read touches it), so Open rebuilds the index and the
// order from the directory alone. Downloads in progress do not count
// against the bound; Open removes those untouched for PartialMaxAge.
//
// A Cache is safe for concurrent use; a Partial is not (its download owns
// it). One process per directory.
package modcache

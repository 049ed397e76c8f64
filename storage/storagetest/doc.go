// Package storagetest is the conformance suite every storage.Store runs.
//
// A backend is done when Run passes against it. The suite checks what the
// rest of Coffer relies on: byte-exact round trips of small, empty and
// multi-part-sized objects; Stat; storage.ErrNotExist for missing keys and a
// silent Delete of them; overwrite; List across more than 1,000 keys in
// lexical order with exact prefix filtering; create-only semantics through
// storage.Create; and that an interrupted Put or Create (reader error or
// cancelled context, halfway) leaves nothing visible, keeps a previous object
// intact and, for stores that can list in-progress multipart uploads, leaves
// no upload behind.
package storagetest

// Package keys keeps every project's data key wrapped by its key provider's
// current root key version: after a rotation (a new local root key version,
// or a KMS plugin that reports a new key_id) it re-wraps each affected data
// key in the background. No record is sealed again, nothing stops, and a
// crash in the middle resumes on the next pass, since each project's
// re-wrap is one transaction and a re-wrapped project is skipped.
package keys

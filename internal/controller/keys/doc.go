// Package keys carries out, in the background, what key rotations leave to
// do, each pass resuming what a crash interrupted:
//
//   - rewrap: after a root key rotation (a new local root key version, or a
//     KMS plugin that reports a new key_id), every affected project's data
//     key is wrapped again by the current version — one transaction per
//     project, no record sealed again, nothing stopped;
//   - reseal: a project whose data key was rotated (POST .../rotate_key) has
//     every record still sealed under the old key sealed again under the new
//     one, and then the old key (old_deks) is dropped;
//   - retire: a root key version that no stored data key needs, in two
//     passes in a row, is removed, with an audit event.
package keys

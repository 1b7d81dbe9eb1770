// Package store owns coligo's persistent state: one bbolt file in the data
// dir, every write committed and fsynced before it returns, every
// project-scoped record sealed under the project's DEK, and a watch feed so
// controllers react to changes without scanning.
//
// The schema:
//
//	(root)
//	├── meta
//	│   ├── schema                   → "1"
//	│   ├── version                  → last version handed out (8 bytes)
//	│   ├── compact_pending          → set by a purge until Compact has run
//	│   ├── audit_head               → JSON {seq, hash, mac}: the chain's last entry, MACed with the audit key
//	│   └── audit_start              → JSON {seq, hash, mac}: the last pruned entry, where the chain resumes
//	├── projects
//	│   └── <project id>             → JSON core.Project (names, status, times; no secret)
//	├── project_names
//	│   └── <name>                   → <project id>   (unique among projects not hard-deleted)
//	├── subdomains
//	│   └── <subdomain>              → <project id>
//	├── deks
//	│   └── <project id>             → JSON seal.WrappedDEK (the DEK only ever wrapped)
//	├── old_deks
//	│   └── <project id>
//	│       └── <DEK id>             → JSON seal.WrappedDEK a rotation replaced, kept until every
//	│                                  record sealed under it is sealed again under the new one
//	├── tokens
//	│   └── <sha256 of token>        → JSON core.Token
//	├── audit
//	│   └── <seq, 8 bytes>           → JSON core.AuditEvent (hash-chained; a project's names only
//	│                                  sealed under its DEK and as an HMAC under the audit key)
//	└── data
//	    └── <project id>
//	        └── <kind>               (secret, config_map, …)
//	            └── <name>           → version (8 bytes, big endian) | sealed JSON
//
// A record's additional authenticated data is "<project id>/<kind>/<name>", so
// a sealed value copied to another place fails to open. A hard delete removes
// the wrapped DEK first, then the project's data bucket, tokens and names,
// then the project; Compact then rewrites the file so that freed pages holding
// old bytes are gone from the data dir.
//
// Backup streams the file as one read transaction sees it, and Restore makes
// such a copy the store of a data dir that has none.
package store

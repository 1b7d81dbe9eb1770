// Package egress converges each project's allowed outbound destinations
// (records of kind allowed_outbound_destination) onto the engine's network
// fence, and marks each destination ready once the engine applies it.
package egress

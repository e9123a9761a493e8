// Package mls is Parley's implementation of the Messaging Layer Security
// protocol, RFC 9420.
//
// The protocol is split into packages that follow the RFC and import one
// another in one direction only:
//
//	codec       TLS presentation language and MLS variable-length integers (§2.1)
//	treemath    array-based binary tree arithmetic (Appendix C)
//	suite       cipher suites and the labelled crypto helpers (§5, §17.1)
//	keyschedule the epoch key schedule, PSKs and the exporter (§8)
//	secrettree  the secret tree and its hash ratchets (§9)
//	wire        the protocol's message structs (§6, §7, §10, §12)
//	framing     message framing and protection (§6)
//
// Nothing under mls/ touches a network, a disk or a logger: it returns errors.
package mls

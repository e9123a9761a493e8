// Package wire holds the structs of the MLS protocol (RFC 9420) with their
// TLS presentation language encodings: framing (§6), the ratchet tree (§7),
// key packages (§10), proposals and commits (§12), Welcome and GroupInfo
// (§12.4.3) and the extensions of §13 and §17.
//
// Every struct encodes with MarshalMLS and decodes with UnmarshalMLS, and
// decoding then re-encoding any accepted input gives the same bytes: the
// decoders accept only minimal variable-length integers, known enum values
// where a select depends on them, and extension lists without duplicates.
// Decoded byte slices alias the input.
//
// The package checks syntax only. Semantic validation (signatures, tree
// invariants, proposal rules) belongs to the packages that give the
// structs meaning.
package wire

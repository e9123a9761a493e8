package store

import (
	"encoding/binary"
	"fmt"
)

// Key layout. Every key starts with a one-byte namespace; variable-length
// components inside a key carry a one-byte length prefix so no two
// components can be confused and prefix scans stay exact.
//
//	m schema                       -> uint32 schema version
//	i name                         -> identity value
//	k ref                          -> KeyPackage private key
//	s len(scope) scope key         -> setting value
//	p id                           -> peer record
//	G group                        -> empty (registry of groups)
//	g len(group) group h           -> head
//	g len(group) group e len(id) id 0  -> uint64 epoch number
//	g len(group) group e len(id) id 1  -> epoch snapshot
//	g len(group) group n           -> uint64 last log sequence number
//	g len(group) group l seq 0     -> log entry (id, envelope)
//	g len(group) group l seq 1     -> log entry result
//	g len(group) group x id        -> uint64 sequence number of log entry id
//	g len(group) group o msgID     -> outbox record
//	g len(group) group d msgID     -> uint64 epoch in which msgID was delivered
//	g len(group) group D epoch msgID -> empty (delivered ids by epoch, for pruning)
const (
	nsMeta       = 'm'
	nsIdentity   = 'i'
	nsKeyPackage = 'k'
	nsSetting    = 's'
	nsPeer       = 'p'
	nsGroupIndex = 'G'
	nsGroup      = 'g'

	grpHead          = 'h'
	grpEpoch         = 'e'
	grpLogNext       = 'n'
	grpLog           = 'l'
	grpLogID         = 'x'
	grpOutbox        = 'o'
	grpDelivered     = 'd'
	grpDeliveredByEp = 'D'

	epochNumber   = 0
	epochSnapshot = 1
	logEntry      = 0
	logResult     = 1
)

// Limits on key components. IDs in Parley are 16 to 32 bytes; the limits
// leave room without letting a caller build huge keys.
const (
	maxIDLen   = 255
	maxNameLen = 1024
)

var schemaKey = []byte{nsMeta, 's', 'c', 'h', 'e', 'm', 'a'}

func checkID(what string, id []byte) error {
	if len(id) == 0 || len(id) > maxIDLen {
		return fmt.Errorf("%w: %s of %d bytes (want 1 to %d)", ErrInvalidArgument, what, len(id), maxIDLen)
	}
	return nil
}

func checkName(what, name string, maxLen int) error {
	if len(name) == 0 || len(name) > maxLen {
		return fmt.Errorf("%w: %s of %d bytes (want 1 to %d)", ErrInvalidArgument, what, len(name), maxLen)
	}
	return nil
}

func key(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func lp(b []byte) []byte { return append([]byte{byte(len(b))}, b...) }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func identityKey(name string) []byte  { return key([]byte{nsIdentity}, []byte(name)) }
func keyPackageKey(ref []byte) []byte { return key([]byte{nsKeyPackage}, ref) }
func peerKey(id string) []byte        { return key([]byte{nsPeer}, []byte(id)) }
func settingKey(scope, k string) []byte {
	return key([]byte{nsSetting}, lp([]byte(scope)), []byte(k))
}
func groupIndexKey(group []byte) []byte { return key([]byte{nsGroupIndex}, group) }

// groupPrefix is the prefix of every key of one group (except its entry in
// the group index).
func groupPrefix(group []byte) []byte { return key([]byte{nsGroup}, lp(group)) }

func headKey(group []byte) []byte { return key(groupPrefix(group), []byte{grpHead}) }
func epochPrefix(group []byte) []byte {
	return key(groupPrefix(group), []byte{grpEpoch})
}
func epochKey(group, id []byte, part byte) []byte {
	return key(epochPrefix(group), lp(id), []byte{part})
}
func logNextKey(group []byte) []byte { return key(groupPrefix(group), []byte{grpLogNext}) }
func logPrefix(group []byte) []byte  { return key(groupPrefix(group), []byte{grpLog}) }
func logKey(group []byte, seq uint64, part byte) []byte {
	return key(logPrefix(group), u64(seq), []byte{part})
}
func logIDKey(group, id []byte) []byte { return key(groupPrefix(group), []byte{grpLogID}, id) }
func outboxPrefix(group []byte) []byte {
	return key(groupPrefix(group), []byte{grpOutbox})
}
func outboxKey(group, msgID []byte) []byte { return key(outboxPrefix(group), msgID) }
func deliveredKey(group, msgID []byte) []byte {
	return key(groupPrefix(group), []byte{grpDelivered}, msgID)
}
func deliveredByEpochPrefix(group []byte) []byte {
	return key(groupPrefix(group), []byte{grpDeliveredByEp})
}
func deliveredByEpochKey(group []byte, epoch uint64, msgID []byte) []byte {
	return key(deliveredByEpochPrefix(group), u64(epoch), msgID)
}

// encodeLogEntry encodes the immutable part of a log entry: the ID and the
// envelope as received. The result lives under its own key so that
// SetLogResult does not rewrite the envelope.
func encodeLogEntry(id, envelope []byte) []byte {
	v := make([]byte, 0, binary.MaxVarintLen64+len(id)+len(envelope))
	v = binary.AppendUvarint(v, uint64(len(id)))
	v = append(v, id...)
	return append(v, envelope...)
}

func decodeLogEntry(v []byte) (id, envelope []byte, err error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return nil, nil, fmt.Errorf("%w: malformed log entry", ErrCorrupt)
	}
	v = v[k:]
	return v[:n:n], v[n:], nil
}

func decodeU64(v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %d-byte integer", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

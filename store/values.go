package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	badger "github.com/dgraph-io/badger/v4"
)

// Every value is stored with a CRC-32C of its key and value appended.
// Badger checks the blocks of its tables, but when it cannot read a value
// from its value log (a damaged or truncated file) it logs the error and
// returns an empty value with no error (Item.yieldItemValue, v4.9.6). The
// checksum turns that, and a value pointer to the wrong place, into
// ErrCorrupt.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const sumLen = 4

func valueSum(key, value []byte) uint32 {
	return crc32.Update(crc32.Checksum(key, castagnoli), castagnoli, value)
}

// set stores value under key with its checksum.
func set(txn *badger.Txn, key, value []byte) error {
	v := make([]byte, len(value)+sumLen)
	copy(v, value)
	binary.BigEndian.PutUint32(v[len(value):], valueSum(key, value))
	return txn.Set(key, v)
}

// valueOf returns a copy of the item's value after checking its checksum.
func valueOf(item *badger.Item) ([]byte, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	k := item.Key()
	if len(v) < sumLen {
		return nil, fmt.Errorf("%w: value of key %x unreadable (%d bytes)", ErrCorrupt, prefix(k), len(v))
	}
	n := len(v) - sumLen
	if binary.BigEndian.Uint32(v[n:]) != valueSum(k, v[:n]) {
		return nil, fmt.Errorf("%w: value of key %x fails its checksum", ErrCorrupt, prefix(k))
	}
	return v[:n:n], nil
}

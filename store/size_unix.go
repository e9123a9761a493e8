//go:build unix

package store

import (
	"io/fs"
	"syscall"
)

// diskBytes is what a file takes on disk: its allocated blocks (badger
// preallocates its value log and memtable files, sparse, far beyond what
// they hold).
func diskBytes(info fs.FileInfo) int64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return info.Size()
}

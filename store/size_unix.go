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

// freeBytes is what the file system holding dir lets an unprivileged
// process write (blocks available, not counting those kept for root).
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}

//go:build !unix

package store

import "io/fs"

// diskBytes is what a file takes on disk, as far as this system says.
func diskBytes(info fs.FileInfo) int64 { return info.Size() }

// freeBytes cannot say here: writes are not checked for free space.
func freeBytes(string) (int64, bool) { return 0, false }

module github.com/parley-p2p/parley

go 1.26

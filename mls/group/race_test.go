//go:build race

package group_test

const raceEnabled = true

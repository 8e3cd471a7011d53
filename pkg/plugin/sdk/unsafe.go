package sdk

import "unsafe"

// bytesString returns b as a string without copying. b must never be
// modified afterwards: EvaluateBatch aliases only its private copy of the
// batch.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Command noabi is a valid WASI reactor built with Go that does not
// implement the plugin ABI.
package main

//go:wasmexport hello
func hello() uint32 { return 42 }

func main() {}

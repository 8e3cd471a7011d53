package ring

import (
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"
)

// loadKeyring reads the gossip encryption keys: primary encrypts what this
// node sends, every key decrypts what it receives (key rotation: add the
// new key everywhere, make it primary everywhere, then remove the old).
func loadKeyring(primary string, rotation []string) (*memberlist.Keyring, error) {
	pk, err := readKey("memberlist.encryption_key_file", primary)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for i, f := range rotation {
		k, err := readKey(fmt.Sprintf("memberlist.encryption_rotation_key_files[%d]", i), f)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	kr, err := memberlist.NewKeyring(keys, pk)
	if err != nil {
		return nil, fmt.Errorf("memberlist.encryption_key_file: %w", err)
	}
	return kr, nil
}

func readKey(field, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s %s: not base64 (%w); write one with `openssl rand -base64 32 > %s`", field, path, err, path)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("%s %s: the key is %d bytes; use 16, 24 or 32 (AES-128/192/256), e.g. `openssl rand -base64 32`", field, path, len(k))
}

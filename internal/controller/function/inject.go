package function

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Code is what a function's instance is given once: its source (inline)
// or its files (a code bundle), the name of its entry, and the
// environment its code sees (secret values included: they travel in
// memory only, never into the instance's spec).
type Code struct {
	Source []byte
	Files  map[string][]byte
	Main   string
	Env    map[string]string
}

// ErrCodeInvalid is the proxy's answer to code that does not load or lacks
// its entry.
var ErrCodeInvalid = errors.New("the function's code does not load")

// Inject gives a warm instance a function's code.
func Inject(ctx context.Context, client *http.Client, w Warm, c Code) error {
	spec := map[string]any{"main": c.Main, "env": c.Env}
	if c.Files != nil {
		spec["files"] = c.Files // each file in base64
	} else {
		spec["code"] = base64.StdEncoding.EncodeToString(c.Source)
	}
	body, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+w.Addr()+"/.coligo/init", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Close = true // the instance keeps no connection of coligo's
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Coligo-Init-Token", w.Token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("give instance %s its code: %w", w.ID, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode == http.StatusOK && resp.Header.Get("X-Coligo-Initialized") == "true":
		return nil
	case resp.Header.Get("X-Faas-Activation-Id") != "":
		// The function's own answer: the instance has code already.
		return fmt.Errorf("give instance %s its code: it runs a function already", w.ID)
	case resp.StatusCode == http.StatusUnprocessableEntity:
		var e struct{ Error string }
		json.Unmarshal(msg, &e)
		return fmt.Errorf("%w: %s", ErrCodeInvalid, e.Error)
	}
	return fmt.Errorf("give instance %s its code: %s", w.ID, resp.Status)
}

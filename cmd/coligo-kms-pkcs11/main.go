// Command coligo-kms-pkcs11 is a Kubernetes KMS v2 plugin whose keys live
// in a PKCS#11 token (an HSM, or SoftHSM2 for tests): coligo, or a
// kube-apiserver, wraps its data keys with it over a unix socket.
//
//	coligo-kms-pkcs11 serve --socket /run/kms.sock --token coligo --key-label coligo-kek [--create-key]
//	coligo-kms-pkcs11 key rotate|disable|enable|destroy [--key-id coligo-kek:v1] --token coligo --key-label coligo-kek
//
// The token's PIN comes from --pin-file or COLIGO_KMS_PIN, never from a flag
// value (which other users could read in the process list).
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/kms/pkg/service"

	"github.com/coligo/coligo/internal/kms/hsm"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "coligo-kms-pkcs11:", err)
		os.Exit(1)
	}
}

type flags struct {
	module, token, pinFile, keyLabel string
}

func (f *flags) add(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.module, "module", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 library of the token")
	fs.StringVar(&f.token, "token", "coligo", "label of the token")
	fs.StringVar(&f.pinFile, "pin-file", "", "file holding the token's user PIN (default: COLIGO_KMS_PIN)")
	fs.StringVar(&f.keyLabel, "key-label", "coligo-kek", "label of the AES key's versions in the token")
}

func (f *flags) open() (*hsm.HSM, error) {
	pin := os.Getenv("COLIGO_KMS_PIN")
	if f.pinFile != "" {
		b, err := os.ReadFile(f.pinFile)
		if err != nil {
			return nil, fmt.Errorf("read --pin-file: %w", err)
		}
		pin = strings.TrimSpace(string(b))
	}
	if pin == "" {
		return nil, errors.New("no PIN: give --pin-file or set COLIGO_KMS_PIN")
	}
	return hsm.Open(hsm.Config{Module: f.module, TokenLabel: f.token, PIN: pin, KeyLabel: f.keyLabel})
}

func newRoot() *cobra.Command {
	var f flags
	root := &cobra.Command{Use: "coligo-kms-pkcs11", Short: "KMS v2 plugin with keys in a PKCS#11 token", SilenceUsage: true}
	f.add(root)

	var socket string
	var create bool
	serve := &cobra.Command{
		Use: "serve", Short: "Serve the KMS v2 API on a unix socket", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := f.open()
			if err != nil {
				return err
			}
			defer h.Close()
			if create {
				if st, _ := h.Status(cmd.Context()); st == nil || st.KeyID == "" {
					id, err := h.Rotate()
					if err != nil {
						return err
					}
					fmt.Fprintln(os.Stderr, "created key", id)
				}
			}
			os.Remove(socket)
			svc := service.NewGRPCService(socket, 10*time.Second, h)
			stop := make(chan os.Signal, 1)
			signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
			go func() { <-stop; svc.Shutdown() }()
			fmt.Fprintln(os.Stderr, "serving KMS v2 on", socket)
			if err := svc.ListenAndServe(); err != nil && !strings.Contains(err.Error(), "closed") {
				return err
			}
			return nil
		},
	}
	serve.Flags().StringVar(&socket, "socket", "/run/coligo-kms-pkcs11.sock", "unix socket to serve on")
	serve.Flags().BoolVar(&create, "create-key", false, "create version 1 of the key when the token has none")

	var keyID string
	key := &cobra.Command{Use: "key", Short: "Manage the key's versions in the token"}
	for _, op := range []struct {
		name, short string
		run         func(h *hsm.HSM) (string, error)
	}{
		{"rotate", "Create the next version; it encrypts from now on", func(h *hsm.HSM) (string, error) { return h.Rotate() }},
		{"disable", "Forbid a version's use (undo with enable)", func(h *hsm.HSM) (string, error) { return keyID, h.SetEnabled(keyID, false) }},
		{"enable", "Allow a disabled version again", func(h *hsm.HSM) (string, error) { return keyID, h.SetEnabled(keyID, true) }},
		{"destroy", "Delete a version: what it wrapped is unrecoverable", func(h *hsm.HSM) (string, error) { return keyID, h.Destroy(keyID) }},
	} {
		key.AddCommand(&cobra.Command{
			Use: op.name, Short: op.short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if op.name != "rotate" && keyID == "" {
					return errors.New("--key-id is required")
				}
				h, err := f.open()
				if err != nil {
					return err
				}
				defer h.Close()
				id, err := op.run(h)
				if err != nil {
					return err
				}
				fmt.Printf("%s %s\n", op.name, id)
				return nil
			},
		})
	}
	key.PersistentFlags().StringVar(&keyID, "key-id", "", "the version, e.g. coligo-kek:v1")
	root.AddCommand(serve, key)
	return root
}

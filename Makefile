# coligo — see README.md. The two commands a new user needs: make demo, make test.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
# The build's version, in `coligo version`, /v2/info and coligo_build_info.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDVERSION := -X github.com/coligo/coligo/internal/version.Version=$(VERSION)

.PHONY: build demo test bench fuzz clean image

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDVERSION)" -o bin/coligo ./cmd/coligo
	$(GO) build -o bin/coligo-kms-pkcs11 ./cmd/coligo-kms-pkcs11
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/coligo-init ./cmd/coligo-init

# coligo's container image, built reproducibly without Docker into
# bin/coligo-image.tar (IMAGE=registry/coligo:tag PUSH=1 pushes it instead).
IMAGE ?= coligo:$(VERSION)
image: build
	$(GO) run ./scripts/coligoimage $(if $(PUSH),-push,-o bin/coligo-image.tar) $(IMAGE)

demo: build
	./scripts/demo.sh

test:
	./scripts/test.sh

bench: build
	./scripts/bench.sh

fuzz:
	FUZZTIME=30s ./scripts/fuzz.sh

clean:
	rm -rf bin

package errkind_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portico-dev/portico/pkg/errkind"
)

func TestKindsMapToCodes(t *testing.T) {
	tests := []struct {
		kind errkind.Kind
		code codes.Code
	}{
		{errkind.Internal, codes.Internal},
		{errkind.InvalidArgument, codes.InvalidArgument},
		{errkind.NotFound, codes.NotFound},
		{errkind.AlreadyExists, codes.AlreadyExists},
		{errkind.Unauthenticated, codes.Unauthenticated},
		{errkind.PermissionDenied, codes.PermissionDenied},
		{errkind.ResourceExhausted, codes.ResourceExhausted},
		{errkind.FailedPrecondition, codes.FailedPrecondition},
		{errkind.Conflict, codes.Aborted},
		{errkind.Unavailable, codes.Unavailable},
		{errkind.DeadlineExceeded, codes.DeadlineExceeded},
		{errkind.Canceled, codes.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			err := fmt.Errorf("wrapped: %w", errkind.New(tc.kind, "x"))
			if got := status.Code(err); got != tc.code {
				t.Fatalf("status.Code = %v, want %v", got, tc.code)
			}
			if back := errkind.KindOf(errkind.FromGRPC(status.Convert(err).Err())); back != tc.kind {
				t.Fatalf("round trip kind = %v, want %v", back, tc.kind)
			}
		})
	}
}

func TestInternalHidesItsCause(t *testing.T) {
	err := errkind.Wrap(errkind.Internal, errors.New("password=hunter2"), "store write")
	if msg := status.Convert(err).Message(); msg != "internal error" {
		t.Fatalf("message = %q", msg)
	}
}

func TestRetryHintAndViolationsSurviveTheWire(t *testing.T) {
	err := errkind.Exhausted(90*time.Second, "slow down")
	back := errkind.FromGRPC(status.Convert(err).Err())
	var e *errkind.Error
	if !errors.As(back, &e) || e.RetryAfter != 90*time.Second {
		t.Fatalf("retry hint lost: %#v", back)
	}
	err2 := errkind.InvalidFields(
		errkind.FieldViolation{Field: "hostname", Rule: "port", Description: "has a port"},
		errkind.FieldViolation{Field: "upstream", Rule: "not-allowed", Description: "not on the allow-list"},
	)
	back = errkind.FromGRPC(status.Convert(err2).Err())
	if !errors.As(back, &e) || len(e.Violations) != 2 || e.Violations[1].Field != "upstream" || e.Violations[0].Rule != "port" {
		t.Fatalf("violations lost: %#v", back)
	}
	if errkind.InvalidFields() != nil {
		t.Fatal("no violations must be nil")
	}
}

func TestKindOf(t *testing.T) {
	if errkind.KindOf(context.Canceled) != errkind.Canceled || errkind.KindOf(fmt.Errorf("x: %w", context.DeadlineExceeded)) != errkind.DeadlineExceeded {
		t.Fatal("context errors misclassified")
	}
	if errkind.KindOf(errors.New("plain")) != errkind.Internal {
		t.Fatal("plain error must be Internal")
	}
	if !errkind.Is(status.Error(codes.NotFound, "x"), errkind.NotFound) {
		t.Fatal("status errors classify by code")
	}
}

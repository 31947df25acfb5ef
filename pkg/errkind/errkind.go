// Package errkind is Portico's small, closed set of error kinds and their one mapping to
// gRPC status codes (and through grpc-gateway to HTTP statuses).
//
// Services return *Error values (built with the constructors here, wrapped freely with
// %w); the gRPC server builder turns them into statuses. Bad input carries field
// violations (google.rpc.BadRequest) naming the field and the rule that failed; rate
// limits carry a retry hint (google.rpc.RetryInfo). An error of kind Internal never shows
// its cause to the caller: the server logs it instead.
//
// What crosses gRPC is the kind, the message and the details; the wrapped cause and its
// type stay in the process that made the error. FromGRPC rebuilds the kind on the client.
package errkind

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Kind is what went wrong, from the caller's point of view.
type Kind uint8

// The kinds. The zero value is Internal, so an unclassified error never leaks detail.
const (
	Internal           Kind = iota // a bug or an unexpected failure; HTTP 500
	InvalidArgument                // bad input; names the field; HTTP 400
	NotFound                       // missing, or not the caller's; HTTP 404
	AlreadyExists                  // a unique thing is taken; HTTP 409
	Unauthenticated                // no or wrong credentials; HTTP 401
	PermissionDenied               // authenticated, not allowed; HTTP 403
	ResourceExhausted              // rate limit; carries a retry hint; HTTP 429
	FailedPrecondition             // the state does not allow it (stale fencing token); HTTP 400
	Conflict                       // concurrent change; retry with fresh state; HTTP 409
	Unavailable                    // a dependency is down; retry; HTTP 503
	DeadlineExceeded               // ran out of time; HTTP 504
	Canceled                       // the caller went away; HTTP 499
)

var kindCodes = [...]codes.Code{
	Internal:           codes.Internal,
	InvalidArgument:    codes.InvalidArgument,
	NotFound:           codes.NotFound,
	AlreadyExists:      codes.AlreadyExists,
	Unauthenticated:    codes.Unauthenticated,
	PermissionDenied:   codes.PermissionDenied,
	ResourceExhausted:  codes.ResourceExhausted,
	FailedPrecondition: codes.FailedPrecondition,
	Conflict:           codes.Aborted,
	Unavailable:        codes.Unavailable,
	DeadlineExceeded:   codes.DeadlineExceeded,
	Canceled:           codes.Canceled,
}

var kindNames = [...]string{
	Internal:           "internal",
	InvalidArgument:    "invalid argument",
	NotFound:           "not found",
	AlreadyExists:      "already exists",
	Unauthenticated:    "unauthenticated",
	PermissionDenied:   "permission denied",
	ResourceExhausted:  "resource exhausted",
	FailedPrecondition: "failed precondition",
	Conflict:           "conflict",
	Unavailable:        "unavailable",
	DeadlineExceeded:   "deadline exceeded",
	Canceled:           "canceled",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Code is the gRPC code of the kind.
func (k Kind) Code() codes.Code {
	if int(k) < len(kindCodes) {
		return kindCodes[k]
	}
	return codes.Internal
}

// FieldViolation names one bad field and the rule it broke.
type FieldViolation struct {
	// Field is the request field's proto name, dotted for nested fields ("route.upstream").
	Field string
	// Rule is a short stable identifier of the check ("required", "public-suffix").
	Rule string
	// Description says what is wrong, in words a dashboard can show.
	Description string
}

// Error is an error of a known kind.
type Error struct {
	Kind Kind
	// Message is shown to the caller (except for Internal, which shows a fixed text).
	Message string
	// Violations lists bad fields (InvalidArgument).
	Violations []FieldViolation
	// RetryAfter is the hint for ResourceExhausted and Unavailable; zero for none.
	RetryAfter time.Duration
	// Cause is the underlying error, kept for logs, never sent.
	Cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	for _, v := range e.Violations {
		fmt.Fprintf(&b, "; %s: %s", v.Field, v.Description)
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// GRPCStatus makes the error a gRPC status, so returning it (even wrapped) from a handler
// sends the right code and details.
func (e *Error) GRPCStatus() *status.Status {
	msg := e.Message
	if e.Kind == Internal {
		msg = "internal error"
	}
	st := status.New(e.Kind.Code(), msg)
	var details []protoadapt.MessageV1
	if len(e.Violations) > 0 {
		br := &errdetails.BadRequest{}
		for _, v := range e.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field:       v.Field,
				Description: v.Description,
				Reason:      v.Rule,
			})
		}
		details = append(details, br)
	}
	if e.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	}
	if len(details) == 0 {
		return st
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st
	}
	return withDetails
}

// Invalid reports one bad field.
func Invalid(field, rule, format string, args ...any) *Error {
	d := fmt.Sprintf(format, args...)
	return &Error{
		Kind:       InvalidArgument,
		Message:    fmt.Sprintf("invalid %s: %s", field, d),
		Violations: []FieldViolation{{Field: field, Rule: rule, Description: d}},
	}
}

// InvalidFields reports several bad fields at once. It returns nil when vs is empty, so
// validators can collect and return in one line.
func InvalidFields(vs ...FieldViolation) error {
	if len(vs) == 0 {
		return nil
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Field
	}
	return &Error{
		Kind:       InvalidArgument,
		Message:    "invalid " + strings.Join(names, ", "),
		Violations: vs,
	}
}

// New makes an error of a kind with a formatted message.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap makes an error of a kind that keeps cause for logs and errors.Is.
func Wrap(kind Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Cause: cause}
}

// Exhausted reports a rate limit, with the time after which a retry may succeed.
func Exhausted(retryAfter time.Duration, format string, args ...any) *Error {
	return &Error{Kind: ResourceExhausted, Message: fmt.Sprintf(format, args...), RetryAfter: retryAfter}
}

// KindOf classifies any error: an *Error in the chain gives its kind, context errors give
// Canceled or DeadlineExceeded, a gRPC status gives the kind of its code, anything else is
// Internal.
func KindOf(err error) Kind {
	if err == nil {
		return Internal
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return DeadlineExceeded
	}
	if st, ok := status.FromError(err); ok {
		return kindOfCode(st.Code())
	}
	return Internal
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// FromGRPC turns an error returned by a gRPC client call back into an *Error with the
// same kind, message, violations and retry hint. Non-status errors pass through KindOf.
func FromGRPC(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Kind: kindOfCode(st.Code()), Message: st.Message(), Cause: err}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, FieldViolation{Field: v.GetField(), Rule: v.GetReason(), Description: v.GetDescription()})
			}
		case *errdetails.RetryInfo:
			e.RetryAfter = d.GetRetryDelay().AsDuration()
		}
	}
	return e
}

func kindOfCode(c codes.Code) Kind {
	for k, kc := range kindCodes {
		if kc == c {
			return Kind(k)
		}
	}
	switch c {
	case codes.OK, codes.Unknown, codes.Unimplemented, codes.DataLoss:
		return Internal
	case codes.OutOfRange:
		return InvalidArgument
	}
	return Internal
}

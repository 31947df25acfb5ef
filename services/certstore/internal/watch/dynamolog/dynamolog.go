// Package dynamolog is certstore's change log (watch.Log) in DynamoDB: numbered items in
// one partition of the certstore table, followed by polling.
//
// # Items
//
//	pk         sk                       attributes
//	#changes   <sequence, 19 digits>    kind, name, expires_at (time-to-live)
//	#changes   head                     seq: the highest sequence ever appended
//
// ("#" cannot start a hostname, so the partition never meets a certificate's.)
//
// # Appending without gaps
//
// Append reads the head and the newest entry (one Query), then writes the entry after
// them on condition that it does not exist yet; when another replica took that number it
// tries the next one. A number is therefore written only after every lower one was, and
// a strongly consistent read that sees an entry sees all before it: readers never meet
// a gap they would have to wait for, and a replica that dies between two steps leaves
// nothing half done. The head is then raised (a conditional write that only ever
// increases it), so numbers are never reused after entries expire; a replica that died
// before raising it is caught up by the next Append or by any follower that sees an entry
// past it.
//
// # Following
//
// Each certstore process's hub asks for the entries after its position every
// PollInterval (250 ms by default: four strongly consistent queries a second per
// replica, each half a read unit when nothing changed), so a change reaches every replica
// well within a second. Revisions are "<sequence>-0".
//
// # Retention
//
// Entries expire Retention after they were written (DynamoDB's time-to-live removes
// them, eventually). A watcher may resume from a revision while the entry after it is
// still there with more than an hour to live (entries after it were written later, so
// they live longer); otherwise it gets a RESET. Followers that find an entry missing
// in a range report an error, and the hub resets its watchers.
package dynamolog

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/portico-dev/portico/pkg/dynamo"
	certstorev1 "github.com/portico-dev/portico/pkg/gen/portico/certstore/v1"
	"github.com/portico-dev/portico/services/certstore/internal/watch"
)

const (
	partition = "#changes"
	skHead    = "head"

	aKind = "kind"
	aName = "name"
	aSeq  = "seq"

	// resumeMargin is how long the entry after a resumed revision must still live: a
	// replay takes seconds, so nothing it needs expires under it.
	resumeMargin = time.Hour
)

// Options tune the log.
type Options struct {
	// Retention is how long entries are kept for watchers that resume (24 h by default).
	Retention time.Duration
	// PollInterval is how often a follower asks for new entries (250 ms by default).
	PollInterval time.Duration
}

// Log is a watch.Log on DynamoDB.
type Log struct {
	t    dynamo.Table
	opts Options
	now  func() time.Time
}

var _ watch.Log = (*Log)(nil)

// New returns the log in the certstore table t.
func New(t dynamo.Table, opts Options) *Log {
	if opts.Retention <= 0 {
		opts.Retention = 24 * time.Hour
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	return &Log{t: t, opts: opts, now: time.Now}
}

func seqSK(seq uint64) string { return fmt.Sprintf("%019d", seq) }

// tip is the head and the newest entry, read together.
type tip struct{ head, newest uint64 }

func (p tip) last() uint64 { return max(p.head, p.newest) }

// tip reads the head item and the newest entry with one consistent Query ("head" sorts
// after every number, so a descending query meets it first).
func (l *Log) tip(ctx context.Context) (tip, error) {
	res, err := l.t.Client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(l.t.Name),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": dynamo.S(partition)},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(2),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return tip{}, dynamo.Wrap(ctx, "read change log position", err)
	}
	var p tip
	for _, item := range res.Items {
		sk := dynamo.StringAttr(item, dynamo.AttrSK)
		if sk == skHead {
			n, err := number(item, aSeq)
			if err != nil {
				return tip{}, err
			}
			p.head = uint64(n)
			continue
		}
		n, err := strconv.ParseUint(sk, 10, 64)
		if err != nil {
			return tip{}, fmt.Errorf("change log entry %q: %w", sk, err)
		}
		p.newest = max(p.newest, n)
	}
	return p, nil
}

func number(item dynamo.Item, attr string) (int64, error) {
	v, ok := item[attr].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("change log item without %s", attr)
	}
	return strconv.ParseInt(v.Value, 10, 64)
}

// Append implements watch.Log.
func (l *Log) Append(ctx context.Context, kind certstorev1.ChangeKind, name string) (string, error) {
	p, err := l.tip(ctx)
	if err != nil {
		return "", fmt.Errorf("append change of %s: %w", name, err)
	}
	expires := dynamo.EpochSeconds(l.now().Add(l.opts.Retention))
	for seq := p.last() + 1; ; seq++ {
		_, err := l.t.Client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(l.t.Name),
			Item: map[string]types.AttributeValue{
				dynamo.AttrPK: dynamo.S(partition), dynamo.AttrSK: dynamo.S(seqSK(seq)),
				aKind: dynamo.N(int64(kind)), aName: dynamo.S(name), dynamo.AttrExpires: dynamo.N(expires),
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		if dynamo.IsConditionFailed(err) {
			continue // another replica took this number
		}
		if err != nil {
			return "", dynamo.Wrap(ctx, "append change of "+name, err)
		}
		if err := l.raiseHead(ctx, seq); err != nil {
			return "", err
		}
		return watch.Revision{Major: seq}.String(), nil
	}
}

// raiseHead sets the head to seq unless it is already there or beyond.
func (l *Log) raiseHead(ctx context.Context, seq uint64) error {
	_, err := l.t.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.t.Name),
		Key:                       dynamo.KeyOf(partition, skHead),
		UpdateExpression:          aws.String("SET seq = :s"),
		ConditionExpression:       aws.String("attribute_not_exists(seq) OR seq < :s"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": dynamo.N(int64(seq))},
	})
	if err != nil && !dynamo.IsConditionFailed(err) {
		return dynamo.Wrap(ctx, "raise change log head", err)
	}
	return nil
}

// Last implements watch.Log.
func (l *Log) Last(ctx context.Context) (watch.Revision, error) {
	p, err := l.tip(ctx)
	if err != nil {
		return watch.Revision{}, err
	}
	return watch.Revision{Major: p.last()}, nil
}

// Holds implements watch.Log.
func (l *Log) Holds(ctx context.Context, rev watch.Revision) (bool, error) {
	if rev.Minor != 0 {
		return false, nil // not a revision of this log (a Redis stream id)
	}
	p, err := l.tip(ctx)
	if err != nil {
		return false, err
	}
	switch last := p.last(); {
	case rev.Major > last:
		return false, nil // from the future: another log's, or a wiped table's
	case rev.Major == last:
		return true, nil
	}
	res, err := l.t.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(l.t.Name), Key: dynamo.KeyOf(partition, seqSK(rev.Major+1)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, dynamo.Wrap(ctx, "read change log entry", err)
	}
	if res.Item == nil {
		return false, nil
	}
	exp, err := number(res.Item, dynamo.AttrExpires)
	if err != nil {
		return false, err
	}
	return time.Unix(exp, 0).After(l.now().Add(resumeMargin)), nil
}

// After implements watch.Log.
func (l *Log) After(ctx context.Context, rev watch.Revision, count int) ([]watch.Change, error) {
	changes, _, err := l.read(ctx, rev, count)
	return changes, err
}

// read returns up to count changes after rev, and the head if the query reached it
// (0 otherwise). A missing entry in the range is an error.
func (l *Log) read(ctx context.Context, rev watch.Revision, count int) ([]watch.Change, uint64, error) {
	res, err := l.t.Client.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(l.t.Name),
		KeyConditionExpression: aws.String("pk = :pk AND sk > :after"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": dynamo.S(partition), ":after": dynamo.S(seqSK(rev.Major)),
		},
		Limit:          aws.Int32(int32(count + 1)), // room for the head item after the entries
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, 0, dynamo.Wrap(ctx, "read change log", err)
	}
	var out []watch.Change
	var head uint64
	want := rev.Major + 1
	for _, item := range res.Items {
		sk := dynamo.StringAttr(item, dynamo.AttrSK)
		if sk == skHead {
			n, err := number(item, aSeq)
			if err != nil {
				return nil, 0, err
			}
			head = uint64(n)
			continue
		}
		if len(out) == count {
			continue
		}
		seq, err := strconv.ParseUint(sk, 10, 64)
		if err != nil {
			return nil, 0, fmt.Errorf("change log entry %q: %w", sk, err)
		}
		if seq != want {
			return nil, 0, fmt.Errorf("change log entries %d to %d are gone (expired): the watchers must reset", want, seq-1)
		}
		want++
		kind, err := number(item, aKind)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, watch.Change{
			Revision: watch.Revision{Major: seq}.String(),
			Kind:     certstorev1.ChangeKind(kind),
			Name:     dynamo.StringAttr(item, aName),
		})
	}
	return out, head, nil
}

// Wait implements watch.Log by polling every PollInterval until a change comes or block
// passes. A follower that sees entries past the head raises it (see the package
// documentation).
func (l *Log) Wait(ctx context.Context, rev watch.Revision, block time.Duration) ([]watch.Change, error) {
	deadline := time.Now().Add(block)
	for {
		changes, head, err := l.read(ctx, rev, 1000)
		if err != nil {
			return nil, err
		}
		if n := len(changes); n > 0 {
			last, _ := watch.ParseRevision(changes[n-1].Revision)
			if head != 0 && head < last.Major || head == 0 && len(changes) < 1000 {
				if err := l.raiseHead(ctx, last.Major); err != nil {
					return nil, err
				}
			}
			return changes, nil
		}
		wait := min(l.opts.PollInterval, time.Until(deadline))
		if wait <= 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

/**
 * The bounds every input is held to on both sides of the trust boundary (domain/limits.ts): names,
 * UUIDs, links, disk paths, memory, reasons, ports and DRBD minors, at and just beyond each limit,
 * with the message an operator or a node agent's caller sees.
 */
import { describe, expect, test } from 'vitest';
import type { z } from 'zod';
import {
  BANDWIDTH_MAX_MIBPS,
  DiskPathSchema,
  DOWNTIME_MAX_MS,
  HOOK_TIMEOUT_MAX_SEC,
  LinkSchema,
  MEMORY_MAX_MIB,
  MibSchema,
  MinorSchema,
  NAME_MAX_LENGTH,
  NameSchema,
  POLL_MAX_MS,
  PORT_MAX,
  PortSchema,
  REASON_MAX_LENGTH,
  ReasonSchema,
  SHUTDOWN_TIMEOUT_MAX_SEC,
  UuidSchema,
} from '../../../domain/limits.js';

/** The refusal messages of `input`, or null when it is accepted. */
function refusal(schema: z.ZodType, input: unknown): string | null {
  const r = schema.safeParse(input);
  return r.success ? null : r.error.issues.map((i) => i.message).join('; ');
}

const HOST_STYLE = 'must be a host-style name (letters, digits, ".", "_", "-"; no "..")';
const UUID_CHARS = 'must be letters, digits, ".", "_" and "-"';
const LINK = 'must be an interface or routing table name';
const RELATIVE = 'must be a relative path inside the storage directory (no "..", no leading "/")';

describe('the limits', () => {
  test('are the documented sizes', () => {
    expect({
      MEMORY_MAX_MIB,
      BANDWIDTH_MAX_MIBPS,
      DOWNTIME_MAX_MS,
      SHUTDOWN_TIMEOUT_MAX_SEC,
      HOOK_TIMEOUT_MAX_SEC,
      POLL_MAX_MS,
      NAME_MAX_LENGTH,
      REASON_MAX_LENGTH,
      PORT_MAX,
    }).toEqual({
      MEMORY_MAX_MIB: 16_777_216, // 16 TiB
      BANDWIDTH_MAX_MIBPS: 1_048_576, // 1 TiB/s
      DOWNTIME_MAX_MS: 2_000_000,
      SHUTDOWN_TIMEOUT_MAX_SEC: 86_400,
      HOOK_TIMEOUT_MAX_SEC: 86_400,
      POLL_MAX_MS: 3_600_000,
      NAME_MAX_LENGTH: 40,
      REASON_MAX_LENGTH: 1000,
      PORT_MAX: 65_535,
    });
  });
});

describe('names', () => {
  test.each([['a'], ['web1'], ['9'], ['node1.example.com'], ['my_db-2'], ['A.b-C_d'], ['x'.repeat(40)], ['a.b.c'], ['x_'], ['x-'], ['x.']])(
    '%j is accepted',
    (name) => {
      expect(refusal(NameSchema, name)).toBeNull();
    },
  );

  test.each([
    ['', `must not be empty; ${HOST_STYLE}`],
    ['x'.repeat(41), 'must be at most 40 characters'],
    ['a..b', HOST_STYLE],
    ['web1..', HOST_STYLE],
    ['node1.example..com', HOST_STYLE],
    ['.web1', HOST_STYLE],
    ['_web1', HOST_STYLE],
    ['-rf', HOST_STYLE],
    ['web1;reboot', HOST_STYLE],
    [';web1', HOST_STYLE],
    ['web 1', HOST_STYLE],
    ['web1/', HOST_STYLE],
    ['a/b', HOST_STYLE],
    ['wéb1', HOST_STYLE],
    ['web1\n', HOST_STYLE],
  ])('%j is refused: %s', (name, message) => {
    expect(refusal(NameSchema, name)).toBe(message);
  });
});

describe('UUIDs and links', () => {
  test.each([
    [UuidSchema, 'inst-1', null],
    [UuidSchema, '0b3c1f52-8d1e-4f4b-9a0f-5d8f2c1e7a10', null],
    [UuidSchema, 'disk-1-0', null],
    [UuidSchema, 'a', null],
    [UuidSchema, 'a._-', null],
    [UuidSchema, 'u'.repeat(64), null],
    [UuidSchema, 'u'.repeat(65), 'Too big: expected string to have <=64 characters'],
    [UuidSchema, '', `Too small: expected string to have >=1 characters; ${UUID_CHARS}`],
    [UuidSchema, '-x', UUID_CHARS],
    [UuidSchema, '.x', UUID_CHARS],
    [UuidSchema, 'x/y', UUID_CHARS],
    [UuidSchema, 'x y', UUID_CHARS],
    [UuidSchema, 'x:y', UUID_CHARS],
    [LinkSchema, 'br0', null],
    [LinkSchema, 'b', null],
    [LinkSchema, 'vlan.10', null],
    [LinkSchema, 'eth0:1', null],
    [LinkSchema, 'ovs_br-int', null],
    [LinkSchema, '100', null],
    [LinkSchema, 'l'.repeat(32), null],
    [LinkSchema, 'l'.repeat(33), 'Too big: expected string to have <=32 characters'],
    [LinkSchema, '', `Too small: expected string to have >=1 characters; ${LINK}`],
    [LinkSchema, '-br0', LINK],
    [LinkSchema, ':br0', LINK],
    [LinkSchema, 'br0;', LINK],
    [LinkSchema, 'br 0', LINK],
    [LinkSchema, 'br0/x', LINK],
  ])('%#: %j', (schema, input, message) => {
    expect(refusal(schema, input)).toBe(message);
  });
});

describe('disk paths', () => {
  test.each([
    ['disk0.img', null],
    ['files1/disk0.img', null],
    ['a/b/c/d', null],
    ['_tmp/x', null],
    ['files1/_x', null],
    ['files1/x..y', null],
    ['9/9-9_9.9', null],
    [`${'p'.repeat(127)}/${'q'.repeat(127)}`, null],
    [`${'p'.repeat(128)}/${'q'.repeat(127)}`, 'Too big: expected string to have <=255 characters'],
    ['', RELATIVE],
    ['/etc/shadow', RELATIVE],
    ['../outside.img', RELATIVE],
    ['files1/../../etc/shadow', RELATIVE],
    ['files1/..', RELATIVE],
    ['./disk0.img', RELATIVE],
    ['files1/.hidden', RELATIVE],
    ['files1/-x', RELATIVE],
    ['files1//disk0.img', RELATIVE],
    ['files1/', RELATIVE],
    ['files1/disk 0.img', RELATIVE],
    ['disk0.img;rm', RELATIVE],
    ['files1\\disk0.img', RELATIVE],
  ])('%j: %s', (path, message) => {
    expect(refusal(DiskPathSchema, path)).toBe(message);
  });
});

describe('numbers', () => {
  test.each([
    ['memory', MibSchema, 0, null],
    ['memory', MibSchema, 16_777_216, null],
    ['memory', MibSchema, 16_777_217, 'Too big: expected number to be <=16777216'],
    ['memory', MibSchema, -1, 'Too small: expected number to be >=0'],
    ['memory', MibSchema, 0.5, 'Invalid input: expected int, received number'],
    ['memory', MibSchema, '512', 'Invalid input: expected number, received string'],
    ['port', PortSchema, 1, null],
    ['port', PortSchema, 65_535, null],
    ['port', PortSchema, 0, 'Too small: expected number to be >=1'],
    ['port', PortSchema, 65_536, 'Too big: expected number to be <=65535'],
    ['port', PortSchema, 8102.5, 'Invalid input: expected int, received number'],
    ['DRBD minor', MinorSchema, 0, null],
    ['DRBD minor', MinorSchema, 1_048_575, null],
    ['DRBD minor', MinorSchema, 1_048_576, 'Too big: expected number to be <=1048575'],
    ['DRBD minor', MinorSchema, -1, 'Too small: expected number to be >=0'],
    ['DRBD minor', MinorSchema, 1.5, 'Invalid input: expected int, received number'],
  ])('%s %j: %s', (_, schema, input, message) => {
    expect(refusal(schema, input)).toBe(message);
  });
});

describe('reasons', () => {
  test('may be empty and up to 1000 characters long', () => {
    expect(refusal(ReasonSchema, '')).toBeNull();
    expect(refusal(ReasonSchema, 'r'.repeat(1000))).toBeNull();
    expect(refusal(ReasonSchema, 'r'.repeat(1001))).toBe('must be at most 1000 characters');
    expect(refusal(ReasonSchema, 1)).toBe('Invalid input: expected string, received number');
  });
});

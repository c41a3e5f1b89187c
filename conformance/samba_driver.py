#!/usr/bin/env python3
"""Runs conformance cases against a real SMB2/3 server (Samba) and prints what it answered.

Input (stdin): JSON {"host", "port", "share", "stepSeconds", "cases": [{"name", "steps": [...]}]}.
Output (stdout): JSON {"server": dialect, "cases": [{"name", "observed": [status per step]}]}.

Each step is one request of one client (one TCP connection and SMB session each) on one open;
the vocabulary is the one conformance/cases.ts defines:
  open    {client, handle, path, durable?, lease?}
                                           create-or-open for read and write, sharing all;
                                           durable: with a durable handle request (DHnQ,
                                           MS-SMB2 2.2.13.2.3) and a batch oplock, or with
                                           lease: a read+handle lease (RqLs, as a Linux cifs
                                           client asks) instead of the oplock
  lock    {handle, offset, length, mode, wait}
          wait false: fail-immediately; wait true: a blocking request sent from the client's
          own thread (the step observes PENDING if it has not completed when the step ends)
  unlock  {handle, offset, length}
  read    {handle, offset, length}
  write   {handle, offset, length}
  close   {handle}
  drop    {client}                         the client's TCP connection is cut (no logoff)
  reconnect {client}                       a new connection and session for the client; each
                                           durable handle is reclaimed (DHnC), the others (and
                                           any reclaim the server refuses) stay stale
  watch   {client, handle, path, filter}    opens a directory ('.': the case's own) for
                                           CHANGE_NOTIFY; filter: lastWrite, size, attributes,
                                           fileName
  notify  {handle}                          a CHANGE_NOTIFY request on the watch, blocking (like
                                           a blocking lock: PENDING until something changes)
  touch   {client, path, times?}            sets the file's last-write time explicitly (times
                                           times, each to another time)
  outcome {of}                             the status of step `of` (a blocking lock or a
                                           notify) by now
A status is an NT status name (STATUS_SUCCESS, STATUS_LOCK_NOT_GRANTED, ...), or PENDING.
Steps run one after another, `stepSeconds` apart, so a blocking request has time to complete.
Each case works in a directory of its own, named after it.

Needs impacket (Debian: python3-impacket). Written for nasq; it reads no files and writes none.
"""

import json
import os
import socket
import struct
import sys
import threading
import time

from impacket import nt_errors, smb3
from impacket.smbconnection import SMBConnection, SessionError
from impacket import smb3structs as s3

# impacket raises either of these, depending on the layer.
SESSION_ERRORS = (SessionError, smb3.SessionError)


def error_code(error):
    return error.getErrorCode() if hasattr(error, 'getErrorCode') else error.get_error_code()


SMB2_LOCKFLAG_SHARED = 0x01
SMB2_LOCKFLAG_EXCLUSIVE = 0x02
SMB2_LOCKFLAG_UNLOCK = 0x04
SMB2_LOCKFLAG_FAIL_IMMEDIATELY = 0x10


class Answer:
    """The status a request was answered with (impacket raises only for some)."""

    def __init__(self, status):
        self.status = status


def create_context(name, data):
    """An SMB2 create context (MS-SMB2 2.2.13.2): a 4-byte name padded to 8, then its data."""
    context = s3.SMB2CreateContext()
    context['Next'] = 0
    context['NameOffset'] = 16
    context['NameLength'] = len(name)
    context['DataOffset'] = 24
    context['DataLength'] = len(data)
    context['Buffer'] = name + b'\x00' * (8 - len(name)) + data
    return context


class Chained:
    """Create contexts in one chain: each but the last says where the next starts (8-aligned)."""

    def __init__(self, data):
        self.data = data

    def getData(self):
        return self.data


def chained(contexts):
    out = b''
    for index, context in enumerate(contexts):
        raw = context.getData()
        if index < len(contexts) - 1:
            padding = (8 - len(raw) % 8) % 8
            raw = struct.pack('<L', len(raw) + padding) + raw[4:] + b'\x00' * padding
        out += raw
    return Chained(out)


def status_name(code):
    entry = nt_errors.ERROR_MESSAGES.get(code)
    return entry[0] if entry else 'STATUS_0x%08x' % code


class Client:
    def __init__(self, spec):
        self.connection = SMBConnection(spec['host'], spec['host'], sess_port=spec['port'], preferredDialect=s3.SMB2_DIALECT_30, timeout=60)
        self.connection.login('guest', '')
        self.tree = self.connection.connectTree(spec['share'])
        self.smb = self.connection.getSMBServer()

    def request(self, command, data):
        packet = self.smb.SMB_PACKET()
        packet['Command'] = command
        packet['TreeID'] = self.tree
        packet['Data'] = data
        answer = self.smb.recvSMB(self.smb.sendSMB(packet))
        return Answer(answer['Status'])

    def lock(self, file_id, offset, length, flags):
        element = s3.SMB2_LOCK_ELEMENT()
        element['Offset'] = offset
        element['Length'] = length
        element['Flags'] = flags
        lock = s3.SMB2Lock()
        lock['FileID'] = file_id
        lock['LockCount'] = 1
        lock['LockSequence'] = 0
        lock['Locks'] = element.getData()
        return self.request(s3.SMB2_LOCK, lock)

    def create(self, path, durable_context=None, lease_key=None):
        access = s3.FILE_READ_DATA | s3.FILE_WRITE_DATA
        sharing = s3.FILE_SHARE_READ | s3.FILE_SHARE_WRITE | s3.FILE_SHARE_DELETE
        contexts = [] if durable_context is None else [durable_context]
        if lease_key is not None:
            # SMB2_CREATE_REQUEST_LEASE: key, state read + handle caching, flags, duration.
            contexts.append(create_context(b'RqLs', lease_key + struct.pack('<LLQ', 0x01 | 0x02, 0, 0)))
        if not contexts:
            return self.connection.createFile(self.tree, path, desiredAccess=access, shareMode=sharing, creationDisposition=s3.FILE_OPEN_IF)
        oplock = 0xFF if lease_key is not None else s3.SMB2_OPLOCK_LEVEL_BATCH  # 0xFF: a lease
        return self.smb.create(self.tree, path, access, sharing, 0, s3.FILE_OPEN_IF, 0,
                               oplockLevel=oplock, createContexts=[chained(contexts)])

    def open_directory(self, path):
        # FILE_LIST_DIRECTORY | SYNCHRONIZE, FILE_DIRECTORY_FILE.
        return self.smb.create(self.tree, path, 0x1 | 0x100000, 0x7, 0x1, s3.FILE_OPEN, 0)

    def notify(self, file_id, completion_filter):
        request = s3.SMB2ChangeNotify()
        request['Flags'] = 0
        request['OutputBufferLength'] = 4096
        request['FileID'] = file_id
        request['CompletionFilter'] = completion_filter
        return self.request(s3.SMB2_CHANGE_NOTIFY, request)

    def touch(self, path, filetime):
        # FILE_WRITE_ATTRIBUTES | SYNCHRONIZE; FILE_BASIC_INFORMATION (class 4) with only the
        # last-write time set (0 leaves a time as it is).
        file_id = self.connection.createFile(self.tree, path, desiredAccess=0x100 | 0x100000, shareMode=0x7, creationDisposition=s3.FILE_OPEN)
        try:
            self.smb.setInfo(self.tree, file_id, inputBlob=struct.pack('<QQQQLL', 0, 0, filetime, 0, 0, 0), fileInfoClass=4)
        finally:
            self.connection.closeFile(self.tree, file_id)

    def read(self, file_id, offset, length):
        read = s3.SMB2Read()
        read['Padding'] = 0x50
        read['FileID'] = file_id
        read['Length'] = length
        read['Offset'] = offset
        read['MinimumCount'] = 0
        read['Channel'] = 0
        read['RemainingBytes'] = 0
        read['ReadChannelInfoOffset'] = 0
        read['ReadChannelInfoLength'] = 0
        read['Buffer'] = b'\x00'
        return self.request(s3.SMB2_READ, read)

    def write(self, file_id, offset, length):
        write = s3.SMB2Write()
        write['FileID'] = file_id
        write['Length'] = length
        write['Offset'] = offset
        write['WriteChannelInfoOffset'] = 0
        write['Buffer'] = b'w' * length
        return self.request(s3.SMB2_WRITE, write)

    def drop(self):
        # Cut the connection without a logoff or close: what a crash or a network failure does.
        sock = self.smb._NetBIOSSession.get_socket()
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


def guarded(action):
    try:
        result = action()
        if isinstance(result, Answer):
            return status_name(result.status)
        return 'STATUS_SUCCESS'
    except SESSION_ERRORS as error:
        return status_name(error_code(error))
    except Exception as error:  # a dropped connection, a protocol error
        return 'ERROR ' + type(error).__name__


def run_case(spec, case):
    clients = {}
    handles = {}  # handle name -> (client name, file id)
    durable = {}  # handle name -> path, for the durable ones
    leases = {}  # handle name -> lease key, for the leased ones
    observed = []
    pending = {}  # step index -> {'status': ...}
    filters = {}  # watch handle name -> CHANGE_NOTIFY completion filter
    directory = case['name']
    setup = Client(spec)
    setup.connection.createDirectory(spec['share'], directory)
    setup.connection.logoff()
    dropped = set()
    for index, step in enumerate(case['steps']):
        op = step['op']
        status = 'STATUS_SUCCESS'
        if op in ('open', 'watch', 'touch'):
            # The client's first request connects it (a connection and session of its own).
            name = step['client']
            if name not in clients:
                clients[name] = Client(spec)
        if op == 'open':
            client = clients[name]
            context = create_context(b'DHnQ', b'\x00' * 16) if step.get('durable') else None
            try:
                # Each case has files of its own: nothing one leaves behind (a disconnected
                # durable handle lives on for a minute) reaches the next.
                path = directory + '/' + step['path']
                lease_key = os.urandom(16) if step.get('lease') else None
                handles[step['handle']] = (name, client.create(path, context, lease_key))
                if lease_key is not None:
                    leases[step['handle']] = lease_key
                if context is not None:
                    durable[step['handle']] = path
            except SESSION_ERRORS as error:
                status = status_name(error_code(error))
        elif op == 'watch':
            try:
                path = directory if step['path'] == '.' else directory + '/' + step['path']
                handles[step['handle']] = (name, clients[name].open_directory(path))
                wanted = step['filter']
                filters[step['handle']] = ((0x01 if wanted.get('fileName') else 0) | (0x04 if wanted.get('attributes') else 0)
                                           | (0x08 if wanted.get('size') else 0) | (0x10 if wanted.get('lastWrite') else 0))
            except SESSION_ERRORS as error:
                status = status_name(error_code(error))
        elif op == 'touch':
            # A distinct time each: 2026-01-01 plus the step number in seconds plus the touch
            # number in milliseconds, as FILETIME (100 ns units).
            for time_number in range(step.get('times', 1)):
                filetime = 134115264000000000 + index * 10_000_000 + time_number * 10_000
                status = guarded(lambda: clients[name].touch(directory + '/' + step['path'], filetime))
                if status != 'STATUS_SUCCESS':
                    break
        elif op == 'drop':
            clients[step['client']].drop()
            dropped.add(step['client'])
        elif op == 'reconnect':
            client = Client(spec)
            clients[step['client']] = client
            dropped.discard(step['client'])
            for handle, path in durable.items():
                owner, file_id = handles[handle]
                if owner != step['client']:
                    continue
                try:
                    handles[handle] = (owner, client.create(path, create_context(b'DHnC', file_id), leases.get(handle)))
                except SESSION_ERRORS:
                    pass  # refused (purged, timed out): the handle stays stale
        elif op == 'outcome':
            status = pending[step['of']].get('status', 'PENDING')
        elif step['handle'] not in handles:
            status = 'ERROR no open ' + step['handle']  # its open failed
        else:
            name, file_id = handles[step['handle']]
            client = clients[name]
            if op == 'lock':
                flags = SMB2_LOCKFLAG_SHARED if step['mode'] == 'shared' else SMB2_LOCKFLAG_EXCLUSIVE
                if not step['wait']:
                    flags |= SMB2_LOCKFLAG_FAIL_IMMEDIATELY
                action = lambda: client.lock(file_id, step['offset'], step['length'], flags)
            elif op == 'unlock':
                action = lambda: client.lock(file_id, step['offset'], step['length'], SMB2_LOCKFLAG_UNLOCK)
            elif op == 'read':
                action = lambda: client.read(file_id, step['offset'], step['length'])
            elif op == 'write':
                action = lambda: client.write(file_id, step['offset'], step['length'])
            elif op == 'close':
                action = lambda: client.connection.closeFile(client.tree, file_id)
            elif op == 'notify':
                action = lambda: client.notify(file_id, filters[step['handle']])
            else:
                raise ValueError('unknown step %r' % op)
            if (op == 'lock' and step['wait']) or op == 'notify':
                box = {}
                pending[index] = box

                def wait(action=action, box=box):
                    box['status'] = guarded(action)
                threading.Thread(target=wait, daemon=True).start()
                time.sleep(spec['stepSeconds'])
                status = box.get('status', 'PENDING')
            else:
                status = guarded(action)
        observed.append(status)
        time.sleep(spec['stepSeconds'])
    for name, client in clients.items():
        if name not in dropped:
            try:
                client.connection.logoff()
            except Exception:
                pass
        try:
            client.smb._NetBIOSSession.get_socket().close()
        except Exception:
            pass
    return observed


def main():
    spec = json.load(sys.stdin)
    results = []
    for case in spec['cases']:
        results.append({'name': case['name'], 'observed': run_case(spec, case)})
    probe = Client(spec)
    dialect = '0x%04x' % probe.connection.getDialect()
    probe.connection.close()
    json.dump({'dialect': dialect, 'cases': results}, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
